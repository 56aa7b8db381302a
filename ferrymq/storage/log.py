"""A log: a directory of segments holding records numbered 0, 1, 2... (offsets) across segments.

Files are named by the offset of their first record, zero-padded to 20 digits (``00000000000000001000.seg``)
so a directory listing sorts in log order and an offset finds its segment by bisection, as in Kafka.
The active (last) segment takes appends; once it passes ``segment_bytes`` the next append rolls to a
new one, so space can be reclaimed a whole file at a time by ``delete_segments_before``.

Recovery on open, and why it may drop whole segments: ``fsync()`` syncs every dirty segment, oldest
first, before it returns, so a confirmed record implies every byte before it was durable. Hence if a
segment had to be truncated (or its header never reached disk, or the next one does not start where
it ends), nothing after that point was ever confirmed: the later segments are deleted and reported.
A header that is present but wrong, or segments that overlap, raise CorruptSegment instead.

Threading: one owner thread appends, reads and deletes; ``fsync()`` may run concurrently in another
thread (group commit in an executor). ``delete_segments_before`` and ``close`` wait for it.
"""

from __future__ import annotations

import os
import threading
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferrymq.storage.commit import sync_directory
from ferrymq.storage.errors import CorruptSegment, OffsetOutOfRange
from ferrymq.storage.records import encode_record
from ferrymq.storage.segment import DEFAULT_INDEX_INTERVAL_BYTES, RecoveryReport, Segment, TornHeader

SEGMENT_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


@dataclass(slots=True)
class LogRecoveryReport:
    """What opening a log directory found and did: per-segment reports plus segments removed."""

    directory: str
    segments: list[RecoveryReport] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)

    @property
    def bytes_truncated(self) -> int:
        return sum(r.bytes_truncated for r in self.segments)

    @property
    def clean(self) -> bool:
        return not self.removed and self.bytes_truncated == 0

    def summary(self) -> str:
        if self.clean:
            return f"{self.directory}: clean, {len(self.segments)} segment(s)"
        parts = [
            f"{r.path}: truncated {r.bytes_truncated} bytes ({r.reason.value if r.reason else '?'}"
            f" {r.detail})"
            for r in self.segments
            if r.truncated
        ]
        parts += [f"{name}: removed ({why})" for name, why in self.removed]
        return f"{self.directory}: " + "; ".join(parts)


class Log:
    """Records by offset over a directory of segments. Appends are durable only after ``fsync()``."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
        segment_ms: int | None = None,
    ) -> None:
        """``segment_ms``: also roll once the active segment is this old (Kafka's segment.ms), so
        a slow log's space can be reclaimed by age, not only once a segment fills up."""
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.segment_ms = segment_ms
        self._active_since = time.monotonic()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._interval = index_interval_bytes
        self._state_lock = threading.Lock()  # segment list and dirty flags vs a concurrent fsync()
        self._fsync_lock = threading.Lock()  # one fsync at a time; delete/close wait for it
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self._dir_dirty = False
        self.closed = False
        self.recovery = self._recover()

    # --- recovery ---

    def _recover(self) -> LogRecoveryReport:
        report = LogRecoveryReport(str(self.directory))
        found: list[tuple[int, Path]] = []
        for path in self.directory.iterdir():
            stem = path.name.removesuffix(SEGMENT_SUFFIX)
            if path.name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
                found.append((int(stem), path))
        found.sort()
        cut: str | None = None  # once set, every later segment is removed for this reason
        fallback_base = found[0][0] if found else 0
        try:
            for base, path in found:
                if cut is not None:
                    self._remove(path, report, cut)
                    continue
                try:
                    seg = Segment.open(path, self._interval)
                except TornHeader:
                    self._remove(path, report, "header never reached disk")
                    cut = f"follows {path.name}, whose header never reached disk"
                    continue
                if seg.base != base:
                    seg.close()
                    raise CorruptSegment(f"{path}: header base {seg.base} does not match its name")
                if self._segments and seg.base != self._segments[-1].next_number:
                    prev = self._segments[-1]
                    if seg.base < prev.next_number:
                        seg.close()
                        raise CorruptSegment(
                            f"{path}: overlaps {prev.path.name} (ends at {prev.next_number})"
                        )
                    seg.close()
                    self._remove(path, report, f"gap after {prev.path.name} (ends at {prev.next_number})")
                    cut = f"follows the gap after {prev.path.name}"
                    continue
                assert seg.recovery is not None
                self._segments.append(seg)
                self._bases.append(seg.base)
                report.segments.append(seg.recovery)
                if seg.recovery.truncated:
                    cut = f"follows {path.name}, which was truncated"
            if not self._segments:
                self._add_segment(fallback_base)
        except BaseException:
            for seg in self._segments:
                seg.close()
            raise
        return report

    def _remove(self, path: Path, report: LogRecoveryReport, why: str) -> None:
        path.unlink()
        self._dir_dirty = True
        report.removed.append((path.name, why))

    def _too_old(self) -> bool:
        age_ms = (time.monotonic() - self._active_since) * 1000
        return self.segment_ms is not None and age_ms >= self.segment_ms

    def _add_segment(self, base: int) -> Segment:
        self._active_since = time.monotonic()
        seg = Segment.create(self.directory / segment_name(base), base, index_interval_bytes=self._interval)
        self._segments.append(seg)
        self._bases.append(base)
        self._dir_dirty = True
        return seg

    # --- the contract ---

    @property
    def first_offset(self) -> int:
        """The lowest offset still readable."""
        return self._segments[0].base

    @property
    def next_offset(self) -> int:
        """The offset the next appended record gets."""
        return self._segments[-1].next_number

    def append(self, batch: Sequence[tuple[int, bytes]]) -> list[int]:
        """Append (type, payload) records with one write; returns their offsets. Not yet durable."""
        frames = [encode_record(type_, payload) for type_, payload in batch]
        if not frames:
            return []
        with self._state_lock:
            active = self._segments[-1]
            if active.count and (active.size >= self.segment_bytes or self._too_old()):
                active = self._add_segment(active.next_number)
            first = active.next_number
            active.append(frames)
        return list(range(first, first + len(frames)))

    def read(self, offset: int) -> tuple[int, bytes]:
        """(type, payload) of the record at ``offset``; OffsetOutOfRange if absent or deleted."""
        if not self.first_offset <= offset < self.next_offset:
            raise OffsetOutOfRange(f"offset {offset} outside [{self.first_offset}, {self.next_offset})")
        seg = self._segments[bisect_right(self._bases, offset) - 1]
        rec = seg.read_number(offset)
        return rec.type, rec.payload

    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """(type, payload) of the records from ``offset`` on, in order: at least one, about
        ``max_bytes`` at most, never crossing a segment boundary (the caller asks again)."""
        if not self.first_offset <= offset < self.next_offset:
            raise OffsetOutOfRange(f"offset {offset} outside [{self.first_offset}, {self.next_offset})")
        seg = self._segments[bisect_right(self._bases, offset) - 1]
        return [(rec.type, rec.payload) for rec in seg.read_run(offset, max_bytes)]

    def roll(self) -> None:
        """Start a new active segment (if the current one holds anything), so that a log whose
        records are all settled can give back its last file too."""
        with self._state_lock:
            active = self._segments[-1]
            if active.count:
                self._add_segment(active.next_number)

    def delete_segments_before(self, offset: int) -> int:
        """Delete every segment whose records are all below ``offset``; returns the records reclaimed.

        The active segment is never deleted, so ``first_offset`` may stay below ``offset``.
        """
        reclaimed = 0
        with self._fsync_lock, self._state_lock:
            keep = 0
            while keep + 1 < len(self._segments) and self._segments[keep + 1].base <= offset:
                keep += 1
            if keep and (self._segments[keep].dirty or self._dir_dirty):
                # The first kept segment must be on disk before older ones go: else a crash could
                # leave no segment at all, and the log would restart at offset 0 (offsets reused).
                self._segments[keep].fsync()
                sync_directory(self.directory)
                self._dir_dirty = False
            while len(self._segments) > 1 and self._segments[1].base <= offset:
                seg = self._segments.pop(0)
                self._bases.pop(0)
                seg.close()
                seg.path.unlink()
                reclaimed += seg.count
                self._dir_dirty = True
        return reclaimed

    def flush(self) -> None:
        """Appends reach the OS as they are made; kept for the store contract."""

    def fsync(self) -> int:
        """Make every append made before this call durable; returns the fsync calls made.

        Dirty segments are synced oldest first, then the directory if files were created or deleted.
        Only group commit (ferrymq.storage.commit) should call this.
        """
        with self._fsync_lock:
            if self.closed:  # closed (a deleted queue's log): nothing left to make durable
                return 0
            with self._state_lock:
                dirty = [seg for seg in self._segments if seg.dirty]
                sync_dir, self._dir_dirty = self._dir_dirty, False
            try:
                for seg in dirty:
                    seg.fsync()
                if sync_dir:
                    sync_directory(self.directory)
            except BaseException:
                self._dir_dirty = self._dir_dirty or sync_dir
                raise
            return len(dirty) + int(sync_dir)

    @property
    def dirty(self) -> bool:
        return self._dir_dirty or any(seg.dirty for seg in self._segments)

    def close(self) -> None:
        """Close the files. Does not fsync: durability is the commit policy's decision."""
        with self._fsync_lock, self._state_lock:
            self.closed = True
            for seg in self._segments:
                seg.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- introspection (metrics, tests) ---

    @property
    def segments(self) -> list[Segment]:
        return list(self._segments)

    @property
    def size_bytes(self) -> int:
        return sum(seg.size for seg in self._segments)
