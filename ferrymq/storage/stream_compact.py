"""Key compaction of a stream partition (``cleanup.policy=compact``), in two steps as Kafka's cleaner:

1. ``plan`` (any thread): over the inactive segments, map every key to its latest offset, then write
   each segment that loses records to ``<segment>.cleaned`` (kept batches as they are, partly kept
   ones rebuilt by the record codec) and fsync it. The active segment is never touched.
2. ``apply`` (the log's owner): rename each cleaned file over its segment and reopen it — unless the
   segment went meanwhile (retention, topic deletion), in which case the file is dropped.

Offsets never move: a cleaned segment keeps its name and base, its batches their base offsets and
lastOffsetDelta, so a reader meets gaps (skipped by ``StreamLog.read``), never renumbering. The
record format is not storage's business: the codec (``keys``, ``filter_batch``) is passed in.

The offset map is Kafka's: built from the dirty part only (records at or after ``cleaned_upto``),
keys held as fixed-size digests, and bounded (``log.cleaner.dedupe.buffer.size``). When it fills,
the pass ends its cleaning at the first record it could not map, and the next pass goes on from
there; a topic with millions of keys is compacted in several passes in bounded memory. Why this is
correct: below ``cleaned_upto`` every key is already unique, so a record there goes only when the
map holds a later offset for its key; a record of the mapped dirty part stays only if it is its
key's latest; records past the map's end are not judged at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferrymq.storage.commit import sync_data
from ferrymq.storage.formats import KIND_STREAM
from ferrymq.storage.segment import FLAG_COMPACTED, HEADER_BYTES, Segment, StreamSegment, encode_header
from ferrymq.storage.stream_log import StreamLog

CLEANED_SUFFIX = ".cleaned"
# What one offset-map entry costs here: a 16-byte digest, an offset and their dict slot, measured with
# tracemalloc at 137 bytes, 153 at a resize's peak (Kafka's entry is 24 bytes in a flat buffer).
OFFSET_MAP_ENTRY_BYTES = 160
WRITE_CHUNK_BYTES = 1 << 20  # a cleaned segment is written this much at a time
DIGEST_BYTES = 16  # Kafka's MD5 width: a collision in a pass is as unlikely as Kafka's
KeysOf = Callable[[bytes], list[tuple[int, bytes | None]]]
Retain = Callable[[int, int, bytes | None, bool], bool]
FilterBatch = Callable[[bytes, Retain], bytes | None]


@dataclass(slots=True)
class RecordCodec:
    keys: KeysOf
    filter_batch: FilterBatch


@dataclass(slots=True)
class CompactionPlan:
    log: StreamLog
    upto: int  # the inactive segments end here (the active segment's base)
    cleaned: list[tuple[Segment, Path]] = field(default_factory=list)
    records_removed: int = 0
    tombstone_deadline_ms: int = -1  # when the earliest tombstone kept may go (-1: none kept)


def needs_compaction(log: StreamLog, now_ms: int) -> bool:
    """Whether a pass would do anything: new inactive data, or a kept tombstone has expired."""
    if log.segments[-1].base > log.cleaned_upto:
        return True
    return 0 <= log.tombstone_deadline_ms <= now_ms


def plan(log: StreamLog, codec: RecordCodec, now_ms: int, delete_retention_ms: int,
         map_keys_max: int | None = None) -> CompactionPlan:
    """``map_keys_max``: the offset map's bound in keys (None: unbounded, one pass cleans all)."""
    assert map_keys_max is None or map_keys_max >= 1, "a map that holds nothing makes no progress"
    snapshot = list(log.segments)  # one copy: the loop may roll meanwhile
    segments = snapshot[:-1]
    latest, end = offset_map(segments, codec, log.cleaned_upto, snapshot[-1].base, map_keys_max)
    out = CompactionPlan(log, end)
    for seg in segments:
        if seg.base >= end:
            break
        _clean_segment(seg, codec, latest, end, now_ms, delete_retention_ms, out)
    return out


def map_keys_for(buffer_bytes: int) -> int:
    """How many keys a dedupe buffer of ``buffer_bytes`` holds here."""
    return max(1, buffer_bytes // OFFSET_MAP_ENTRY_BYTES)


def _digest(key: bytes) -> bytes:
    return hashlib.blake2b(key, digest_size=DIGEST_BYTES).digest()


def offset_map(segments: list[Segment], codec: RecordCodec, start: int, end: int,
               keys_max: int | None) -> tuple[dict[bytes, int], int]:
    """Key digest -> latest offset over the dirty records from ``start``, and where the map ends:
    ``end`` if every dirty record fitted, else the offset of the first new key that did not."""
    latest: dict[bytes, int] = {}
    for seg in segments:
        if seg.next_number <= start:
            continue
        for _, batch in seg.frames():
            for offset, key in codec.keys(batch):
                if key is None or offset < start:
                    continue
                digest = _digest(key)
                if keys_max is not None and len(latest) >= keys_max and digest not in latest:
                    return latest, offset
                latest[digest] = offset
    return latest, end


def _clean_segment(seg: Segment, codec: RecordCodec, latest: dict[bytes, int], end: int, now_ms: int,
                   delete_retention_ms: int, out: CompactionPlan) -> None:
    removed = 0

    def retain(offset: int, ts: int, key: bytes | None, tombstone: bool) -> bool:
        nonlocal removed
        if offset >= end:  # past the map: not judged in this pass
            return True
        if key is None:  # keyless records cannot be compacted (Kafka's cleaner drops them too)
            keep = False
        else:
            last = latest.get(_digest(key))
            keep = last is None or last == offset  # None: a clean-part key no dirty record supersedes
        if keep and tombstone:
            if now_ms - ts > delete_retention_ms:
                keep = False
            else:
                deadline = ts + delete_retention_ms + 1
                if out.tombstone_deadline_ms < 0 or deadline < out.tombstone_deadline_ms:
                    out.tombstone_deadline_ms = deadline
        removed += not keep
        return keep

    cleaned: _Cleaned | None = None
    for pos, batch in seg.frames():
        new = codec.filter_batch(batch, retain)
        if new is not batch and cleaned is None:  # the first change: what came before is copied
            cleaned = _Cleaned(seg, pos)
        if cleaned is not None and new is not None:
            cleaned.add(new)
    if cleaned is not None:
        out.cleaned.append((seg, cleaned.finish()))
        out.records_removed += removed


class _Cleaned:
    """A segment's cleaned copy, written as it is made, so a pass holds at most a chunk of batches
    (segments are up to ``segment.bytes``, a gigabyte by default): the unchanged head is copied from
    the segment's file, then kept batches are appended a chunk at a time, then fsync."""

    def __init__(self, seg: Segment, head_end: int) -> None:
        self.path = seg.path.with_name(seg.path.name + CLEANED_SUFFIX)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.chunk: list[bytes] = []
        self.chunk_bytes = 0
        self._write(encode_header(KIND_STREAM, seg.base, FLAG_COMPACTED))
        src = os.open(seg.path, os.O_RDONLY)
        try:
            at = HEADER_BYTES
            while at < head_end:
                data = os.pread(src, min(WRITE_CHUNK_BYTES, head_end - at), at)
                self._write(data)
                at += len(data)
        finally:
            os.close(src)

    def add(self, batch: bytes) -> None:
        self.chunk.append(batch)
        self.chunk_bytes += len(batch)
        if self.chunk_bytes >= WRITE_CHUNK_BYTES:
            self._flush()

    def finish(self) -> Path:
        try:
            self._flush()
            sync_data(self.fd)
        finally:
            os.close(self.fd)
        return self.path

    def _flush(self) -> None:
        self._write(b"".join(self.chunk))
        self.chunk, self.chunk_bytes = [], 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]


def apply(p: CompactionPlan) -> int:
    """Swap the cleaned files in; returns how many segments were replaced."""
    log, swapped = p.log, 0
    for seg, path in p.cleaned:
        if log.closed or seg not in log.segments:
            path.unlink(missing_ok=True)
            continue
        os.replace(path, seg.path)
        log.replace_segment(seg, StreamSegment.open(seg.path, verify_crc=False))
        swapped += 1
    log.cleaned_upto = max(log.cleaned_upto, p.upto)
    log.tombstone_deadline_ms = p.tombstone_deadline_ms
    return swapped


def compact(log: StreamLog, codec: RecordCodec, now_ms: int, delete_retention_ms: int,
            map_keys_max: int | None = None) -> int:
    """Plan and apply one pass in one go (tests, and callers with nothing else to do); records removed."""
    p = plan(log, codec, now_ms, delete_retention_ms, map_keys_max)
    apply(p)
    return p.records_removed

