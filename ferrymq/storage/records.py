"""Record framing for queue logs: ``length (u32) | crc32c (u32) | type (u8) | payload``.

Why this shape: the length comes first so a reader can skip or bound a record before trusting it; the
CRC32C covers type and payload, so a torn or bit-flipped record is detected rather than delivered;
the type byte lets one log carry several record kinds (publish, ack, ...) without a second framing.
``length`` counts what follows the CRC (type + payload), so it is never 0: a zero-filled tail, which
some filesystems leave after a power cut, is rejected as a bad length. Integers are big-endian, as
Kafka's on-disk formats are.

Decoding never raises on bad input: it stops at the first record it cannot trust and says why,
because recovery must tell a torn tail (short read) from corruption (CRC) and from garbage (length).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import crc32c

from ferrymq.limits import MESSAGE_MAX_BYTES

_PREFIX = struct.Struct(">IIB")  # length, crc32c, type
PREFIX_BYTES = _PREFIX.size  # 9: length(4) + crc(4) + type(1)
RECORD_OVERHEAD_BYTES = PREFIX_BYTES
LENGTH_FIELD_BYTES = 4
CRC_FIELD_BYTES = 4
# Room for what travels with a maximum-size body (properties, headers, routing) in one record.
ENVELOPE_ALLOWANCE_BYTES = 64 * 1024
# Upper bound on a record's ``length`` field (type + payload). Anything above is garbage, not a record:
# without this bound a flipped high bit would make recovery wait for gigabytes that never come.
MAX_RECORD_BODY_BYTES = 1 + MESSAGE_MAX_BYTES + ENVELOPE_ALLOWANCE_BYTES
MAX_PAYLOAD_BYTES = MAX_RECORD_BODY_BYTES - 1
MAX_RECORD_BYTES = 2 * LENGTH_FIELD_BYTES + MAX_RECORD_BODY_BYTES  # the whole framed record
MAX_RECORD_TYPE = 255

assert MAX_RECORD_BYTES < 2**32

# crc32c of the single type byte, so a record's CRC is extend(_TYPE_CRC[t], payload): no concatenation.
_TYPE_CRC: tuple[int, ...] = tuple(crc32c.crc32c(bytes((t,))) for t in range(256))


class DecodeFault(enum.Enum):
    """Why decoding stopped before the end of the buffer."""

    SHORT_READ = "short_read"  # the buffer ends inside a record: torn write, or read more
    CRC_MISMATCH = "crc_mismatch"  # a complete record whose bytes do not match its CRC
    BAD_LENGTH = "bad_length"  # the length field is 0 or above MAX_RECORD_BODY_BYTES
    BAD_HEADER = "bad_header"  # a frame header that cannot be right (a batch whose offsets go back)


@dataclass(frozen=True, slots=True)
class DecodeError:
    """Where and why decoding stopped. ``needed`` is, for a short read, the bytes from ``position``
    that would complete the record if it is sane (the prefix, when even the length is missing)."""

    fault: DecodeFault
    position: int
    detail: str
    needed: int = 0


class Record(NamedTuple):
    position: int  # where the record's length field starts in the buffer (or file)
    type: int
    payload: bytes


def record_crc(type_: int, payload: bytes | memoryview) -> int:
    return crc32c.crc32c(payload, _TYPE_CRC[type_])


def encode_record(type_: int, payload: bytes) -> bytes:
    """Frame one record. Raises ValueError for a type outside u8 or a payload over the bound."""
    if not 0 <= type_ <= MAX_RECORD_TYPE:
        raise ValueError(f"record type {type_} outside 0..{MAX_RECORD_TYPE}")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    payload = bytes(payload)
    return _PREFIX.pack(len(payload) + 1, record_crc(type_, payload), type_) + payload


def encode_records(items: Iterable[tuple[int, bytes]]) -> tuple[bytes, list[int]]:
    """Frame a batch into one buffer (one write call); returns it and each record's start in it."""
    parts: list[bytes] = []
    starts: list[int] = []
    at = 0
    for type_, payload in items:
        frame = encode_record(type_, payload)
        starts.append(at)
        parts.append(frame)
        at += len(frame)
    return b"".join(parts), starts


def check_prefix(buf: bytes, pos: int) -> tuple[int, int, int] | DecodeError:
    """Parse and bound the prefix at ``pos``: (body length, crc, type) or why it cannot be trusted."""
    if len(buf) - pos < PREFIX_BYTES:
        return DecodeError(DecodeFault.SHORT_READ, pos, "record prefix cut short", PREFIX_BYTES)
    length, crc, type_ = _PREFIX.unpack_from(buf, pos)
    if length == 0 or length > MAX_RECORD_BODY_BYTES:
        detail = f"record length {length} outside 1..{MAX_RECORD_BODY_BYTES}"
        return DecodeError(DecodeFault.BAD_LENGTH, pos, detail)
    return length, crc, type_


def decode_records(buf: bytes, offset: int = 0) -> tuple[list[Record], int, DecodeError | None]:
    """Decode complete, CRC-valid records from ``buf[offset:]``.

    Returns (records, end_offset, error): ``end_offset`` is just past the last good record; ``error`` is
    None when the buffer ended exactly on a record boundary, else the reason decoding stopped there.
    """
    records: list[Record] = []
    pos = offset
    end = len(buf)
    while pos < end:
        prefix = check_prefix(buf, pos)
        if isinstance(prefix, DecodeError):
            return records, pos, prefix
        length, crc, type_ = prefix
        stop = pos + PREFIX_BYTES - 1 + length
        if stop > end:
            detail = f"record needs {stop - pos} bytes, {end - pos} present"
            return records, pos, DecodeError(DecodeFault.SHORT_READ, pos, detail, stop - pos)
        payload = buf[pos + PREFIX_BYTES : stop]
        if record_crc(type_, payload) != crc:
            return records, pos, DecodeError(DecodeFault.CRC_MISMATCH, pos, "record CRC32C mismatch")
        records.append(Record(pos, type_, payload))
        pos = stop
    return records, pos, None
