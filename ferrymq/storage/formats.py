"""Record formats: the one pluggable part of a segment.

Every segment file is the same engine (ferrymq.storage.segment: header, sparse index, recovery,
appends, fsync); what differs between record kinds is only how a frame is laid out. A format says:

- ``scan``: decode the complete, sound frames at the start of a buffer (recovery and reads use it);
  it never raises on bad input, it stops and says why (``DecodeFault``), so recovery can tell a torn
  tail (short read) from corruption (CRC) and from garbage (length, header fields);
- ``frame``: size and numbers of the frame at a position from its header alone, for index walks
  (no CRC: walks only cross frames recovery already checked);
- ``decode``: frames as ``Record`` values, for readers that want them one by one.

Two formats exist. ``QUEUE_RECORDS``: queue-log records (ferrymq.storage.records: length, CRC32C,
type, payload), one number per record, numbers implicit. ``KAFKA_BATCHES``: Kafka RecordBatch v2
stored exactly as received, each batch carrying its base offset (written in place, outside its CRC),
its length, its CRC32C and its lastOffsetDelta, so a batch takes ``lastOffsetDelta + 1`` numbers and
compaction may leave gaps between batches. Neither creates a Python object per Kafka record: a batch
is known by its 61-byte header.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Protocol

import crc32c

from ferrymq.storage.records import (
    MAX_RECORD_BODY_BYTES,
    PREFIX_BYTES,
    DecodeError,
    DecodeFault,
    Record,
    check_prefix,
    decode_records,
    record_crc,
)

KIND_QUEUE_LOG = 1
KIND_STREAM = 2

BATCH_HEADER_BYTES = 61
LOG_OVERHEAD_BYTES = 12  # baseOffset + batchLength: what batchLength does not count
MAX_BATCH_BYTES = 1 << 30  # a batch length above this is garbage, not a batch
_BATCH = struct.Struct(">qiibIhiqq")  # baseOffset .. maxTimestamp: what storage reads of a batch
_CRC_FROM = 21  # a batch's CRC32C covers attributes .. end
_LENGTH = struct.Struct(">I")

# (position in the buffer, first number, numbers taken, max timestamp or -1)
Frame = tuple[int, int, int, int]
# (size in bytes, first number or -1 when implicit, numbers taken, max timestamp or -1)
FrameInfo = tuple[int, int, int, int]


class Scan(NamedTuple):
    frames: list[Frame]
    end: int  # just past the last sound frame
    error: DecodeError | None  # None: the buffer ended on a frame boundary


class RecordFormat(Protocol):
    kind: int
    name: str
    index_interval_bytes: int  # default sparse-index density for this kind
    head_bytes: int  # bytes ``frame`` needs to size a frame
    gaps_allowed: bool  # may numbers jump between frames (stream compaction)?
    one_number_per_frame: bool  # every frame holds exactly one number, with no gaps and no time

    def scan(self, buf: bytes, at: int, next_number: int, verify: bool = True,
             contiguous: bool = True) -> Scan: ...

    def frame(self, buf: bytes, at: int) -> FrameInfo | None: ...

    def decode(self, buf: bytes, next_number: int) -> tuple[list[Record], int, DecodeError | None, int]: ...


class QueueRecords:
    """Queue-log records: ``length u32 | crc32c u32 | type u8 | payload``, one number each."""

    kind = KIND_QUEUE_LOG
    name = "queue log"
    index_interval_bytes = 4096
    head_bytes = 4
    gaps_allowed = False
    one_number_per_frame = True

    def scan(self, buf: bytes, at: int, next_number: int, verify: bool = True,
             contiguous: bool = True) -> Scan:
        frames: list[Frame] = []
        end = len(buf)
        view = memoryview(buf)  # CRCs over views: recovery copies no payload
        n = next_number
        while at < end:
            prefix = check_prefix(buf, at)
            if isinstance(prefix, DecodeError):
                return Scan(frames, at, prefix)
            length, crc, type_ = prefix
            stop = at + PREFIX_BYTES - 1 + length
            if stop > end:
                detail = f"record needs {stop - at} bytes, {end - at} present"
                return Scan(frames, at, DecodeError(DecodeFault.SHORT_READ, at, detail, stop - at))
            if verify and record_crc(type_, view[at + PREFIX_BYTES : stop]) != crc:
                return Scan(frames, at, DecodeError(DecodeFault.CRC_MISMATCH, at, "record CRC32C mismatch"))
            frames.append((at, n, 1, -1))
            n += 1
            at = stop
        return Scan(frames, at, None)

    def frame(self, buf: bytes, at: int) -> FrameInfo | None:
        if len(buf) - at < 4:
            return None
        (length,) = _LENGTH.unpack_from(buf, at)
        if not 0 < length <= MAX_RECORD_BODY_BYTES:
            return None
        return PREFIX_BYTES - 1 + length, -1, 1, -1

    def decode(self, buf: bytes, next_number: int) -> tuple[list[Record], int, DecodeError | None, int]:
        records, end, err = decode_records(buf, 0)
        return records, end, err, next_number + len(records)


class KafkaBatches:
    """Kafka RecordBatch v2 as received; a batch takes the numbers ``base .. base + lastOffsetDelta``."""

    kind = KIND_STREAM
    name = "stream"
    index_interval_bytes = 0  # every batch: fetches cut at batch boundaries by bisection, no walk
    head_bytes = BATCH_HEADER_BYTES
    gaps_allowed = True
    one_number_per_frame = False

    def scan(self, buf: bytes, at: int, next_number: int, verify: bool = True,
             contiguous: bool = True) -> Scan:
        """``contiguous``: each batch must start where the last ended (the base offset lies outside
        the CRC, so this is what catches a damaged one); False only in a compacted segment."""
        frames: list[Frame] = []
        end = len(buf)
        view = memoryview(buf)
        while at < end:
            if end - at < BATCH_HEADER_BYTES:
                return Scan(frames, at, _short(at, BATCH_HEADER_BYTES, "batch header cut short"))
            base, length, _epoch, magic, crc, _attr, last_delta, _ts, max_ts = _BATCH.unpack_from(buf, at)
            size = LOG_OVERHEAD_BYTES + length
            if magic != 2 or not BATCH_HEADER_BYTES <= size <= MAX_BATCH_BYTES:
                detail = f"batch magic {magic} / size {size} is not a RecordBatch v2"
                return Scan(frames, at, DecodeError(DecodeFault.BAD_LENGTH, at, detail))
            if base < next_number or last_delta < 0 or (contiguous and base != next_number):
                detail = f"batch base {base} (delta {last_delta}) does not follow {next_number}"
                return Scan(frames, at, DecodeError(DecodeFault.BAD_HEADER, at, detail))
            if at + size > end:
                return Scan(frames, at, _short(at, size, f"batch needs {size} bytes, {end - at} present"))
            if verify and crc32c.crc32c(view[at + _CRC_FROM : at + size]) != crc:
                return Scan(frames, at, DecodeError(DecodeFault.CRC_MISMATCH, at, "batch CRC32C mismatch"))
            frames.append((at, base, last_delta + 1, max_ts))
            next_number = base + last_delta + 1
            at += size
        return Scan(frames, at, None)

    def frame(self, buf: bytes, at: int) -> FrameInfo | None:
        if len(buf) - at < BATCH_HEADER_BYTES:
            return None
        base, length, _e, _m, _c, _a, last_delta, _t, max_ts = _BATCH.unpack_from(buf, at)
        return LOG_OVERHEAD_BYTES + length, base, last_delta + 1, max_ts

    def decode(self, buf: bytes, next_number: int) -> tuple[list[Record], int, DecodeError | None, int]:
        """Batches as records (type 2, the magic; payload the whole batch), CRC-checked. The buffer
        starts at a recovered batch, so their offsets are not checked again (``next_number`` may lie
        inside the first batch)."""
        frames, end, err = self.scan(buf, 0, -1, verify=True, contiguous=False)
        records = []
        for i, (pos, base, count, _ts) in enumerate(frames):
            stop = frames[i + 1][0] if i + 1 < len(frames) else end
            records.append(Record(pos, 2, buf[pos:stop]))
            next_number = base + count
        return records, end, err, next_number


def _short(at: int, needed: int, detail: str) -> DecodeError:
    return DecodeError(DecodeFault.SHORT_READ, at, detail, needed)


QUEUE_RECORDS = QueueRecords()
KAFKA_BATCHES = KafkaBatches()
FORMATS: dict[int, RecordFormat] = {f.kind: f for f in (QUEUE_RECORDS, KAFKA_BATCHES)}
