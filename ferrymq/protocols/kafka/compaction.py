"""Record-level reading and rewriting of one stored batch, for key compaction only.

Why here and not in storage: the segment files know batches, not records; what a key, a tombstone
and a record are is Kafka's format. A batch that keeps every record is returned as the very same
bytes; one that loses records is rebuilt from the kept records' own bytes (their offset and
timestamp deltas stay valid because the base offset and base timestamp do not move), with the same
lastOffsetDelta, producer fields and max timestamp, so offsets are never rewritten.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import cramjam
import crc32c

from ferrymq.protocols.kafka.batch import _HEAD, ATTR_TRANSACTIONAL, HEADER_BYTES
from ferrymq.protocols.kafka.compression import GZIP, LZ4, SNAPPY, ZSTD, decompress
from ferrymq.protocols.kafka.records import _Cursor

ATTR_LOG_APPEND_TIME = 0x08
_XERIAL_HEAD = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
_XERIAL_BLOCK_BYTES = 32 * 1024

# (offset, timestamp ms, key, is tombstone, start, end of the record's bytes in the records section)
ScannedRecord = tuple[int, int, bytes | None, bool, int, int]
Retain = Callable[[int, int, bytes | None, bool], bool]  # (offset, timestamp, key, tombstone) -> keep?


def scan(batch: bytes) -> tuple[bytes, list[ScannedRecord]]:
    """The batch's records section (decompressed) and where each record lies in it."""
    (base, _len, _e, _m, _crc, attrs, _ld, base_ts, max_ts, _p, _pe, _s, count) = _HEAD.unpack_from(batch)
    codec = attrs & 0x07
    body = decompress(codec, memoryview(batch)[HEADER_BYTES:]) if codec else batch[HEADER_BYTES:]
    c = _Cursor(body, 0)
    out: list[ScannedRecord] = []
    for _ in range(count):
        begin = c.pos
        size = c.varint()
        start = c.pos
        c.pos += 1  # record attributes
        ts_delta, delta = c.varint(), c.varint()
        key = c.blob()
        tombstone = c.varint() < 0
        ts = max_ts if attrs & ATTR_LOG_APPEND_TIME else base_ts + ts_delta
        out.append((base + delta, ts, key, tombstone, begin, start + size))
        c.pos = start + size
    return body, out


def keys(batch: bytes) -> list[tuple[int, bytes | None]]:
    """(offset, key) of every record: what the cleaner's offset map is built from. Transactional
    batches (markers and records) stay out of it and are kept whole: the cleaner does not know
    which transactions aborted, and an aborted record must never supersede a committed one."""
    if _HEAD.unpack_from(batch)[5] & ATTR_TRANSACTIONAL:
        return []
    return [(r[0], r[2]) for r in scan(batch)[1]]


def filter_batch(batch: bytes, retain: Retain) -> bytes | None:
    """The batch with only the records ``retain`` keeps: the same bytes if all stay, None if none."""
    if _HEAD.unpack_from(batch)[5] & ATTR_TRANSACTIONAL:
        return batch
    body, records = scan(batch)
    kept = [r for r in records if retain(r[0], r[1], r[2], r[3])]
    if len(kept) == len(records):
        return batch
    if not kept:
        return None
    return rebuild(batch, b"".join(body[r[4] : r[5]] for r in kept), len(kept))


def rebuild(batch: bytes, records: bytes, count: int) -> bytes:
    """A new batch around ``records`` with ``batch``'s header fields (same codec where it can)."""
    attrs = _HEAD.unpack_from(batch)[5]
    codec = attrs & 0x07
    body = _compress(codec, records)
    head = bytearray(batch[:HEADER_BYTES])
    struct.pack_into(">i", head, 8, HEADER_BYTES - 12 + len(body))
    struct.pack_into(">i", head, 57, count)
    crc = crc32c.crc32c(body, crc32c.crc32c(memoryview(head)[21:]))
    struct.pack_into(">I", head, 17, crc)
    return bytes(head) + body


def _compress(codec: int, data: bytes) -> bytes:
    if codec == GZIP:
        return bytes(cramjam.gzip.compress(data))
    if codec == LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    if codec == SNAPPY:  # xerial framing: what Java clients expect and librdkafka reads
        blocks = []
        for i in range(0, len(data), _XERIAL_BLOCK_BYTES):
            raw = bytes(cramjam.snappy.compress_raw(data[i : i + _XERIAL_BLOCK_BYTES]))
            blocks.append(struct.pack(">i", len(raw)) + raw)
        return _XERIAL_HEAD + b"".join(blocks)
    return data
