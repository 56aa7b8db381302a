"""Record framing: exact layout, round trips, and that every kind of damage is reported, not decoded."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferrymq.storage.records import (
    MAX_PAYLOAD_BYTES,
    MAX_RECORD_BODY_BYTES,
    PREFIX_BYTES,
    DecodeFault,
    decode_records,
    encode_record,
    encode_records,
)


def reference_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: an oracle independent of
    the library the records use."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_reference_crc32c_check_value():
    assert reference_crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value


def test_layout_is_length_crc_type_payload():
    frame = encode_record(7, b"abc")
    body = bytes([7]) + b"abc"
    assert frame == struct.pack(">II", len(body), reference_crc32c(body)) + body
    assert PREFIX_BYTES == 9


def test_round_trip_with_positions():
    buf, starts = encode_records([(1, b""), (2, b"hello"), (255, b"x" * 1000)])
    records, end, err = decode_records(buf)
    assert err is None and end == len(buf)
    assert [(r.position, r.type, r.payload) for r in records] == [
        (starts[0], 1, b""),
        (starts[1], 2, b"hello"),
        (starts[2], 255, b"x" * 1000),
    ]


def test_decode_from_an_offset_and_empty_input():
    buf = b"junk" + encode_record(3, b"p")
    records, end, err = decode_records(buf, 4)
    assert [(r.position, r.payload) for r in records] == [(4, b"p")] and end == len(buf) and err is None
    assert decode_records(b"", 0) == ([], 0, None)


def test_every_cut_of_a_record_is_a_short_read():
    good = encode_record(1, b"first")
    last = encode_record(2, b"second record")
    for cut in range(1, len(last)):
        records, end, err = decode_records(good + last[:cut])
        assert [r.payload for r in records] == [b"first"]
        assert end == len(good)
        assert err is not None and err.fault is DecodeFault.SHORT_READ and err.position == len(good)
        assert err.needed == (PREFIX_BYTES if cut < PREFIX_BYTES else len(last))


def test_every_bit_flip_is_detected():
    frame = encode_record(9, b"payload bytes")
    for bit in range(len(frame) * 8):
        damaged = bytearray(frame)
        damaged[bit // 8] ^= 1 << (bit % 8)
        records, end, err = decode_records(bytes(damaged))
        assert records == [] and end == 0 and err is not None, bit
        if bit >= 32:  # crc, type or payload: the length still frames the record
            assert err.fault is DecodeFault.CRC_MISMATCH


def test_bad_lengths():
    zero = bytes(PREFIX_BYTES + 4)  # a zero-filled tail
    _, _, err = decode_records(zero)
    assert err is not None and err.fault is DecodeFault.BAD_LENGTH
    huge = struct.pack(">IIB", MAX_RECORD_BODY_BYTES + 1, 0, 1)
    _, _, err = decode_records(huge)
    assert err is not None and err.fault is DecodeFault.BAD_LENGTH


def test_encode_rejects_out_of_bounds():
    with pytest.raises(ValueError):
        encode_record(256, b"")
    with pytest.raises(ValueError):
        encode_record(-1, b"")

    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_PAYLOAD_BYTES + 1

    with pytest.raises(ValueError):
        encode_record(1, Huge())


@given(st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=300)), max_size=20))
def test_round_trip_property(items):
    buf, starts = encode_records(items)
    records, end, err = decode_records(buf)
    assert err is None and end == len(buf)
    assert [(r.position, r.type, r.payload) for r in records] == [
        (s, t, p) for s, (t, p) in zip(starts, items)
    ]
