"""The one log: a directory of segments (ferrymq.storage.segment) numbered across files, for every
record kind. ``SegmentedLog`` is the engine (naming, rolling, recovery across segments, deleting
from the front, fsync of dirty segments and directories); ``Log`` below puts queue-log records on
it, ``StreamLog`` (ferrymq.storage.stream_log) Kafka batches with retention and compaction on top.

Files are named by the number of their first frame, zero-padded to 20 digits
(``00000000000000001000.seg``) so a directory listing sorts in log order and a number finds its
segment by bisection, as in Kafka. The active (last) segment takes appends; a roll starts a new one,
so space is reclaimed a whole file at a time.

Recovery on open, and why it may drop whole segments: ``fsync()`` syncs every dirty segment, oldest
first, before it returns, so a confirmed frame implies every byte before it was durable. Hence if a
segment had to be truncated (or its header never reached disk, or the next one does not start
where it ends — unless stream compaction wrote it, FLAG_COMPACTED, and dropped its last batches),
nothing after that point was ever confirmed: the later segments are deleted and reported. A header
that is present but wrong, or segments that overlap, raise CorruptSegment instead.

Directory durability: a log syncs the parents of the directories it had to create (or, for one it
found, that directory's parent: a broker killed before its first commit may have left the entry
unsynced) in its first ``fsync()``, with the new segment files' entries, before that fsync returns,
so nothing in a new directory is confirmed while the directory itself could still vanish.

Threading: one owner thread appends, reads and deletes; ``fsync()`` may run concurrently in another
thread (group commit in an executor). Deleting from the front and ``close`` wait for it.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ferrymq.clock import SystemClock
from ferrymq.core.clock import Clock
from ferrymq.storage.commit import make_directories, sync_directory
from ferrymq.storage.errors import CorruptSegment, OffsetOutOfRange
from ferrymq.storage.records import encode_record
from ferrymq.storage.segment import (
    DEFAULT_INDEX_INTERVAL_BYTES,
    FLAG_COMPACTED,
    RecoveryReport,
    Segment,
    TornHeader,
)

SEGMENT_SUFFIX = ".seg"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


@dataclass(slots=True)
class LogRecoveryReport:
    """What opening a log directory found and did: per-segment reports plus segments removed.
    The one recovery report, for queue logs and stream partitions alike."""

    directory: str
    segments: list[RecoveryReport] = field(default_factory=list)
    removed: list[tuple[str, str]] = field(default_factory=list)  # (file name, why)

    @property
    def bytes_truncated(self) -> int:
        return sum(r.bytes_truncated for r in self.segments)

    @property
    def segments_removed(self) -> int:
        return len(self.removed)

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


class SegmentedLog:
    """Frames by number over a directory of segments of one kind (``SEGMENT``). Appends are durable
    only after ``fsync()``."""

    SEGMENT: type[Segment] = Segment

    def __init__(
        self, directory: str | os.PathLike[str], segment_bytes: int,
        index_interval_bytes: int | None = None, clock: Clock | None = None,
    ) -> None:
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be positive")
        self.directory = Path(directory)
        # Synced by the first fsync: the parents of directories made now, or, for a directory found
        # already there, its own parent (a broker killed before its first commit left it unsynced).
        self._new_parents = make_directories(self.directory) or [self.directory.parent]
        self.segment_bytes = segment_bytes
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._interval = index_interval_bytes
        self._state_lock = threading.Lock()  # segment list and dirty flags vs a concurrent fsync()
        self._fsync_lock = threading.Lock()  # one fsync at a time; deletes and close wait for it
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self._dir_dirty = False
        self._active_since_ms = self.clock.monotonic_ms()
        self.closed = False
        self.recovery = self._recover()

    # --- recovery ---

    def _found(self) -> list[tuple[int, Path]]:
        found: list[tuple[int, Path]] = []
        for path in self.directory.iterdir():
            stem = path.name.removesuffix(SEGMENT_SUFFIX)
            if path.name.endswith(SEGMENT_SUFFIX) and stem.isdigit():
                found.append((int(stem), path))
            elif SEGMENT_SUFFIX + "." in path.name:  # a compaction's output never swapped in
                path.unlink()
                self._dir_dirty = True
        return sorted(found)

    def _recover(self) -> LogRecoveryReport:
        report = LogRecoveryReport(str(self.directory))
        found = self._found()
        cut: str | None = None  # once set, every later segment is removed for this reason
        try:
            for base, path in found:
                if cut is not None:
                    self._remove(path, report, cut)
                else:
                    cut = self._recover_one(base, path, report)
            if not self._segments:
                self._add_segment(found[0][0] if found else 0)
        except BaseException:
            for seg in self._segments:
                seg.close()
            raise
        return report

    def _recover_one(self, base: int, path: Path, report: LogRecoveryReport) -> str | None:
        """Open one segment into the log; returns why later segments must go, if they must."""
        try:
            seg = self.SEGMENT.open(path, self._interval)
        except TornHeader:
            self._remove(path, report, "header never reached disk")
            return f"follows {path.name}, whose header never reached disk"
        if seg.base != base:
            seg.close()
            raise CorruptSegment(f"{path}: header base {seg.base} does not match its name")
        if self._segments:
            prev = self._segments[-1]
            if seg.base < prev.next_number:
                seg.close()
                raise CorruptSegment(f"{path}: overlaps {prev.path.name} (ends at {prev.next_number})")
            compacted = seg.format.gaps_allowed and prev.flags & FLAG_COMPACTED
            if seg.base > prev.next_number and not compacted:
                seg.close()
                self._remove(path, report, f"gap after {prev.path.name} (ends at {prev.next_number})")
                return f"follows the gap after {prev.path.name}"
        assert seg.recovery is not None
        self._segments.append(seg)
        self._bases.append(seg.base)
        report.segments.append(seg.recovery)
        return f"follows {path.name}, which was truncated" if seg.recovery.truncated else None

    def _remove(self, path: Path, report: LogRecoveryReport, why: str) -> None:
        path.unlink()
        self._dir_dirty = True
        report.removed.append((path.name, why))

    def _add_segment(self, base: int) -> Segment:
        self._active_since_ms = self.clock.monotonic_ms()
        path = self.directory / segment_name(base)
        seg = self.SEGMENT.create(path, base, index_interval_bytes=self._interval)
        self._segments.append(seg)
        self._bases.append(base)
        self._dir_dirty = True
        return seg

    # --- state ---

    @property
    def first_offset(self) -> int:
        """The lowest number still readable (the first segment's base)."""
        return self._segments[0].base

    @property
    def next_offset(self) -> int:
        """The number the next appended frame starts at."""
        return self._segments[-1].next_number

    def _segment_for(self, offset: int) -> Segment:
        return self._segments[bisect_right(self._bases, offset) - 1]

    def roll(self) -> None:
        """Start a new active segment (if the current one holds anything), so that a log whose
        records are all settled can give back its last file too."""
        with self._state_lock:
            active = self._segments[-1]
            if active.count:
                self._add_segment(active.next_number)

    # --- deleting from the front ---

    def delete_segments_before(self, offset: int) -> int:
        """Delete every segment whose frames are all below ``offset``; returns the frames reclaimed.

        The active segment is never deleted, so ``first_offset`` may stay below ``offset``.
        """
        keep = 0
        while keep + 1 < len(self._segments) and self._segments[keep + 1].base <= offset:
            keep += 1
        return self._drop_front(keep)

    def _drop_front(self, n: int) -> int:
        """Delete the ``n`` oldest segments (never the active one); returns the frames they held."""
        reclaimed = 0
        with self._fsync_lock, self._state_lock:
            n = min(n, len(self._segments) - 1)
            if n <= 0:
                return 0
            if self._segments[n].dirty or self._dir_dirty or self._new_parents:
                # The first kept segment must be on disk before older ones go: else a crash could
                # leave no segment at all, and the log would restart at offset 0 (offsets reused).
                self._segments[n].fsync()
                self._sync_directories()
            for seg in self._segments[:n]:
                seg.close()
                seg.path.unlink(missing_ok=True)
                reclaimed += seg.count
            del self._segments[:n]
            del self._bases[:n]
            self._dir_dirty = True
        return reclaimed

    # --- durability ---

    def flush(self) -> None:
        """Appends reach the OS as they are made; kept for the store contract."""

    def fsync(self) -> int:
        """Make every append made before this call durable; returns the fsync calls made.

        Dirty segments are synced oldest first, then the directory if files were created or deleted
        (and, the first time, the parents of a directory this log created). Only group commit
        (ferrymq.storage.commit) should call this.
        """
        with self._fsync_lock:
            if self.closed:  # closed (a deleted queue's log): nothing left to make durable
                return 0
            with self._state_lock:
                dirty = [seg for seg in self._segments if seg.dirty]
                sync_dir = self._dir_dirty or bool(self._new_parents)
            for seg in dirty:
                seg.fsync()
            if sync_dir:
                return len(dirty) + self._sync_directories()
            return len(dirty)

    def _sync_directories(self) -> int:
        """Sync this log's directory, then any parents whose new entries lead to it. Caller holds the
        fsync lock. On failure the flags stay set: the next fsync tries again."""
        self._dir_dirty = False
        try:
            sync_directory(self.directory)
            for parent in self._new_parents:
                sync_directory(parent)
        except BaseException:
            self._dir_dirty = True
            raise
        done = 1 + len(self._new_parents)
        self._new_parents = []
        return done

    @property
    def dirty(self) -> bool:
        return self._dir_dirty or bool(self._new_parents) or any(seg.dirty for seg in self._segments)

    def close(self) -> None:
        """Close the files. Does not fsync: durability is the commit policy's decision."""
        with self._fsync_lock, self._state_lock:
            self.closed = True
            for seg in self._segments:
                seg.close()

    def __enter__(self) -> SegmentedLog:
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


class Log(SegmentedLog):
    """A queue log: (type, payload) records by offset, framed by ferrymq.storage.records."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
        segment_ms: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """``segment_ms``: also roll once the active segment is this old on ``clock``'s monotonic
        time (Kafka's segment.ms), so a slow log's space can be reclaimed by age, not only size."""
        self.segment_ms = segment_ms
        super().__init__(directory, segment_bytes, index_interval_bytes, clock)

    def _too_old(self) -> bool:
        if self.segment_ms is None:
            return False
        return self.clock.monotonic_ms() - self._active_since_ms >= self.segment_ms

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
        rec = self._segment_for(offset).read_number(offset)
        return rec.type, rec.payload

    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """(type, payload) of the records from ``offset`` on, in order: at least one, about
        ``max_bytes`` at most, never crossing a segment boundary (the caller asks again)."""
        if not self.first_offset <= offset < self.next_offset:
            raise OffsetOutOfRange(f"offset {offset} outside [{self.first_offset}, {self.next_offset})")
        _, records = self._segment_for(offset).read_run_at(offset, max_bytes)  # positions unused
        return [(rec.type, rec.payload) for rec in records]

    def __enter__(self) -> Log:
        return self
