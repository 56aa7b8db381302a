"""RecordBatch v2 checks: CRC, framing, size bound, magic; offsets written in place, never re-encoded."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.batch import BatchError, assign_offsets, validate
from ferrymq.protocols.kafka.records import decode_batches, encode_batch

records = st.lists(st.tuples(st.one_of(st.none(), st.binary(max_size=20)), st.binary(max_size=50),
                             st.just([])), min_size=1, max_size=10)


@given(st.lists(records, min_size=1, max_size=4), st.integers(0, 2**40))
def test_valid_batches_get_consecutive_offsets_and_keep_their_bytes(batches, base):
    payload = bytearray(b"".join(encode_batch(r, 1_000 + i) for i, r in enumerate(batches)))
    original = bytes(payload)
    infos = validate(payload, 1 << 20)
    assert [i.count for i in infos] == [len(r) for r in batches]
    end = assign_offsets(payload, infos, base)
    assert end == base + sum(len(r) for r in batches)
    for i in infos:  # only the base offsets changed: every byte after them is as received
        assert payload[i.start + 8 : i.end] == original[i.start + 8 : i.end]
    decoded = decode_batches(bytes(payload))
    assert [o for o, *_ in decoded] == list(range(base, end))
    assert [(k, v) for _, _, k, v, _ in decoded] == [(k, v) for r in batches for k, v, _ in r]
    validate(payload, 1 << 20)  # still valid: the base offset lies outside the CRC


@given(records, st.data())
def test_any_flipped_byte_under_the_crc_is_corrupt(recs, data):
    payload = bytearray(encode_batch(recs, 5))
    i = data.draw(st.integers(21, len(payload) - 1))
    payload[i] ^= 0x01
    with pytest.raises(BatchError) as e:
        validate(payload, 1 << 20)
    assert e.value.code == errors.CORRUPT_MESSAGE


def test_too_large_truncated_and_old_magic():
    payload = bytearray(encode_batch([(None, b"x" * 500, [])], 1))
    with pytest.raises(BatchError) as e:
        validate(payload, 100)
    assert e.value.code == errors.MESSAGE_TOO_LARGE
    with pytest.raises(BatchError) as e:
        validate(payload[:-1], 1 << 20)
    assert e.value.code == errors.CORRUPT_MESSAGE
    old = bytearray(payload)
    old[16] = 1
    with pytest.raises(BatchError) as e:
        validate(old, 1 << 20)
    assert e.value.code == errors.UNSUPPORTED_FOR_MESSAGE_FORMAT
    with pytest.raises(BatchError):
        validate(bytearray(), 1 << 20)
