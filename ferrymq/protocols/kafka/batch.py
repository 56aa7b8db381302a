"""RecordBatch v2: the checks a broker owes a produced batch, and offset assignment in place.

Layout (offsets into the batch): baseOffset i64 @0 | batchLength i32 @8 | partitionLeaderEpoch i32
@12 | magic i8 @16 | crc u32 @17 (CRC-32C of bytes 21..end) | attributes i16 @21 | lastOffsetDelta
i32 @23 | baseTimestamp i64 @27 | maxTimestamp i64 @35 | producerId i64 @43 | producerEpoch i16 @51 |
baseSequence i32 @53 | recordsCount i32 @57 | records @61.

Why no per-record work: the header says everything the broker needs (how many offsets, the newest
timestamp, the producer and its sequence), the CRC proves the rest intact, and the base offset lies
outside the CRC, so it is rewritten in place and the batch is stored exactly as the client sent it.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

import crc32c  # hardware CRC32C over a memoryview: no copy (google_crc32c wants bytes)

from ferrymq.protocols.kafka import errors

HEADER_BYTES = 61
LOG_OVERHEAD_BYTES = 12  # baseOffset + batchLength: what batchLength does not count
MAGIC_V2 = 2
_HEAD = struct.Struct(">qiibIhiqqqhii")
_BASE = struct.Struct(">q")
_FRAME = struct.Struct(">qi")  # baseOffset, batchLength
ATTR_CODEC_MASK = 0x07
ATTR_TRANSACTIONAL = 0x10
ATTR_CONTROL = 0x20


class BatchInfo(NamedTuple):
    """One validated batch inside a produce payload (``start``/``end`` are byte positions)."""

    start: int
    end: int
    count: int  # type: ignore[assignment]  # lastOffsetDelta + 1: the offsets it takes (shadows tuple.count)
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    attributes: int


class BatchError(Exception):
    """A produced payload the broker must refuse, with the Kafka error code to answer."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def header(buf: bytes | bytearray | memoryview, pos: int = 0) -> tuple[int, ...]:
    """The 13 header fields of the batch at ``pos`` (no checks)."""
    return _HEAD.unpack_from(buf, pos)


def validate(buf: bytes | bytearray | memoryview, max_batch_bytes: int) -> list[BatchInfo]:
    """Every batch in a produce payload, checked for framing, magic, size and CRC32C.

    Raises BatchError(CORRUPT_MESSAGE) for bad framing or CRC, MESSAGE_TOO_LARGE above the bound,
    UNSUPPORTED_FOR_MESSAGE_FORMAT for magic 0/1 message sets.
    """
    out: list[BatchInfo] = []
    view = memoryview(buf)
    pos, end = 0, len(buf)
    if end == 0:
        raise BatchError(errors.CORRUPT_MESSAGE, "empty record set")
    while pos < end:
        if end - pos < HEADER_BYTES:
            raise BatchError(errors.CORRUPT_MESSAGE, f"batch header cut short at byte {pos}")
        (_base, length, _epoch, magic, crc, attrs, last_delta, _ts, max_ts,
         pid, pepoch, seq, _count) = _HEAD.unpack_from(buf, pos)
        if magic != MAGIC_V2:
            raise BatchError(errors.UNSUPPORTED_FOR_MESSAGE_FORMAT, f"record batch magic {magic}")
        size = LOG_OVERHEAD_BYTES + length
        if length < HEADER_BYTES - LOG_OVERHEAD_BYTES or pos + size > end:
            raise BatchError(errors.CORRUPT_MESSAGE, f"batch length {length} does not fit the payload")
        if size > max_batch_bytes:
            raise BatchError(errors.MESSAGE_TOO_LARGE, f"batch of {size} bytes exceeds {max_batch_bytes}")
        if last_delta < 0:
            raise BatchError(errors.CORRUPT_MESSAGE, f"negative lastOffsetDelta {last_delta}")
        if crc32c.crc32c(view[pos + 21 : pos + size]) != crc:
            raise BatchError(errors.CORRUPT_MESSAGE, "record batch fails its CRC32C")
        out.append(BatchInfo(pos, pos + size, last_delta + 1, max_ts, pid, pepoch, seq, attrs))
        pos += size
    return out


def assign_offsets(buf: bytearray, batches: list[BatchInfo], base_offset: int) -> int:
    """Write each batch's base offset in place (outside the CRC); returns the next free offset."""
    offset = base_offset
    for b in batches:
        _BASE.pack_into(buf, b.start, offset)
        offset += b.count
    return offset


def producer_run(head: bytes | bytearray | memoryview) -> tuple[int, int, int, int, int]:
    """(producer id, epoch, base sequence, offsets taken, base offset) of a stored batch's header: what
    idempotent-producer state is rebuilt from at start-up, as Kafka rebuilds it from the log."""
    base, _l, _e, _m, _c, _a, last_delta, _t, _mt, pid, epoch, seq, _n = header(head)
    return pid, epoch, seq, last_delta + 1, base


def batches_below(data: bytes, offset: int) -> bytes:
    """The leading whole batches of ``data`` that start below ``offset`` (a read_committed fetch
    stops at the last stable offset): one header read per batch, none per record."""
    pos, end = 0, len(data)
    while pos + LOG_OVERHEAD_BYTES <= end:
        base, length = _FRAME.unpack_from(data, pos)
        if base >= offset:
            break
        pos += LOG_OVERHEAD_BYTES + length
    return data if pos >= end else data[:pos]


def end_offset(data: bytes) -> int:
    """The offset after the last whole batch of ``data`` (-1 if none): how a reader steps past
    batches that hold nothing for it (transaction markers), by headers alone."""
    pos, end, after = 0, len(data), -1
    while pos + HEADER_BYTES <= end:
        base, length, _e, _m, _c, _a, last_delta = _HEAD.unpack_from(data, pos)[:7]
        if pos + LOG_OVERHEAD_BYTES + length > end:
            break
        after = base + last_delta + 1
        pos += LOG_OVERHEAD_BYTES + length
    return after
