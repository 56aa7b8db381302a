"""Key compaction of a stream partition (``cleanup.policy=compact``), in two steps as Kafka's cleaner:

1. ``plan`` (any thread): over the inactive segments, map every key to its latest offset, then write
   each segment that loses records to ``<segment>.cleaned`` (kept batches as they are, partly kept
   ones rebuilt by the record codec) and fsync it. The active segment is never touched.
2. ``apply`` (the log's owner): rename each cleaned file over its segment and reopen it — unless the
   segment went meanwhile (retention, topic deletion), in which case the file is dropped.

Offsets never move: a cleaned segment keeps its name and base, its batches their base offsets and
lastOffsetDelta, so a reader meets gaps (skipped by ``StreamLog.read``), never renumbering. The
record format is not storage's business: the codec (``keys``, ``filter_batch``) is passed in.

The offset map holds one entry per distinct key of the inactive segments (Kafka bounds it with a
fixed dedupe buffer and cleans in passes; a topic with more keys than memory would need that too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ferrymq.storage.commit import sync_data
from ferrymq.storage.formats import KIND_STREAM
from ferrymq.storage.segment import FLAG_COMPACTED, Segment, StreamSegment, encode_header
from ferrymq.storage.stream_log import StreamLog

CLEANED_SUFFIX = ".cleaned"
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


def plan(log: StreamLog, codec: RecordCodec, now_ms: int, delete_retention_ms: int) -> CompactionPlan:
    snapshot = list(log.segments)  # one copy: the loop may roll meanwhile
    segments = snapshot[:-1]
    out = CompactionPlan(log, snapshot[-1].base)
    latest: dict[bytes, int] = {}
    for seg in segments:
        for _, batch in seg.frames():
            for offset, key in codec.keys(batch):
                if key is not None:
                    latest[key] = offset
    for seg in segments:
        _clean_segment(seg, codec, latest, now_ms, delete_retention_ms, out)
    return out


def _clean_segment(seg: Segment, codec: RecordCodec, latest: dict[bytes, int], now_ms: int,
                   delete_retention_ms: int, out: CompactionPlan) -> None:
    kept: list[bytes] = []
    changed = False
    removed = 0

    def retain(offset: int, ts: int, key: bytes | None, tombstone: bool) -> bool:
        nonlocal removed
        keep = key is not None and latest.get(key) == offset  # keyless records cannot be compacted
        if keep and tombstone:
            if now_ms - ts > delete_retention_ms:
                keep = False
            else:
                deadline = ts + delete_retention_ms + 1
                if out.tombstone_deadline_ms < 0 or deadline < out.tombstone_deadline_ms:
                    out.tombstone_deadline_ms = deadline
        removed += not keep
        return keep

    for _, batch in seg.frames():
        new = codec.filter_batch(batch, retain)
        changed |= new is not batch
        if new is not None:
            kept.append(new)
    if changed:
        out.cleaned.append((seg, _write(seg, kept)))
        out.records_removed += removed


def _write(seg: Segment, batches: list[bytes]) -> Path:
    path = seg.path.with_name(seg.path.name + CLEANED_SUFFIX)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        data = encode_header(KIND_STREAM, seg.base, FLAG_COMPACTED) + b"".join(batches)
        view, at = memoryview(data), 0
        while at < len(data):
            at += os.pwrite(fd, view[at:], at)
        sync_data(fd)
    finally:
        os.close(fd)
    return path


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


def compact(log: StreamLog, codec: RecordCodec, now_ms: int, delete_retention_ms: int) -> int:
    """Plan and apply in one go (tests, and callers with nothing else to do); records removed."""
    p = plan(log, codec, now_ms, delete_retention_ms)
    apply(p)
    return p.records_removed

