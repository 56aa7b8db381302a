"""A stream partition's log: a directory of stream segments named by base offset, appended at the
end, read by offset, rolled at ``segment_bytes`` and trimmed from the front by retention.

Group commit drives ``fsync()`` (this log is a ``Syncable``); a new segment's directory entry is
synced with the first fsync after it is created, or it could vanish with a power cut.
"""

from __future__ import annotations

import os
import shutil
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

from ferrymq.storage.commit import sync_directory
from ferrymq.storage.errors import CorruptSegment
from ferrymq.storage.segment import TornHeader
from ferrymq.storage.stream_segment import StreamSegment

SUFFIX = ".seg"
SEGMENT_BYTES_DEFAULT = 1 << 30  # Kafka's segment.bytes default


def segment_name(base: int) -> str:
    return f"{base:020d}{SUFFIX}"


@dataclass(slots=True)
class StreamRecovery:
    segments: int = 0
    bytes_truncated: int = 0
    segments_removed: int = 0


class StreamLog:
    """One partition. Not thread-safe, except that ``fsync()`` may run in the commit thread."""

    def __init__(self, path: str | os.PathLike[str], segment_bytes: int = SEGMENT_BYTES_DEFAULT,
                 segment_ms: int = -1) -> None:
        self.path = Path(path)
        self.segment_bytes = segment_bytes
        self.segment_ms = segment_ms  # roll when a batch is this much newer than the segment's first
        self.closed = False
        self.cleaned_upto = 0  # compaction: inactive segments below this offset were cleaned
        self.tombstone_deadline_ms = -1  # compaction: when a kept tombstone expires (-1: none kept)
        self.recovery = StreamRecovery()
        self.path.mkdir(parents=True, exist_ok=True)
        self.segments: list[StreamSegment] = []
        self._retired: list[StreamSegment] = []  # replaced by compaction, closed one pass later
        self._bases: list[int] = []
        self._new_dir_entries = False
        self._open_segments()
        if not self.segments:
            self._roll(0)

    def _open_segments(self) -> None:
        for p in self.path.glob(f"*{SUFFIX}.*"):  # a compaction's output never swapped in: the old stays
            p.unlink()
        names = sorted(p for p in self.path.iterdir() if p.suffix == SUFFIX)
        for i, p in enumerate(names):
            last = i == len(names) - 1
            try:
                seg = StreamSegment.open(p, verify_crc=True)
            except TornHeader:
                if not last:
                    raise
                p.unlink()  # created but never synced: it cannot hold an acknowledged batch
                self.recovery.segments_removed += 1
                continue
            if self.segments and seg.base < self.segments[-1].next_offset:  # compaction leaves gaps
                seg.close()
                raise CorruptSegment(f"{p}: base {seg.base} overlaps offset "
                                     f"{self.segments[-1].next_offset}")
            self.recovery.bytes_truncated += seg.bytes_truncated
            self.segments.append(seg)
            self._bases.append(seg.base)
        self.recovery.segments = len(self.segments)

    def _roll(self, base: int) -> None:
        seg = StreamSegment.create(self.path / segment_name(base), base)
        self.segments.append(seg)
        self._bases.append(base)
        self._new_dir_entries = True

    # --- state ---

    @property
    def start_offset(self) -> int:
        """The log start offset: the first segment's base (compaction never moves it)."""
        return self.segments[0].base

    @property
    def next_offset(self) -> int:
        """The log end offset (and, on one node, the high watermark)."""
        return self.segments[-1].next_offset

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    # --- writing ---

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int]]) -> int:
        """Append batches whose base offsets are already written in ``data``; ``batches`` holds
        ``(start in data, count, max timestamp)`` each. Returns the next offset."""
        active = self.segments[-1]
        full = active.size + len(data) > self.segment_bytes
        if active.size > 20 and (full or self._too_old(active, batches)):
            self._roll(active.next_offset)
            active = self.segments[-1]
        base = active.next_offset
        entries = []
        for start, count, max_ts in batches:
            entries.append((start, base, count, max_ts))
            base += count
        active.append(data, entries)
        return base

    def _too_old(self, active: StreamSegment, batches: list[tuple[int, int, int]]) -> bool:
        """Kafka's time roll: by record timestamps (the first batch's against the newest), no clock."""
        if self.segment_ms < 0 or not active.max_ts:
            return False
        return batches[-1][2] - active.max_ts[0] > self.segment_ms

    def replace_segment(self, old: StreamSegment, new: StreamSegment) -> None:
        """Swap in a compacted copy of an inactive segment (same base, same offsets)."""
        i = self.segments.index(old)
        assert new.base == old.base and i < len(self.segments) - 1, "only inactive segments are replaced"
        self.segments[i] = new
        for seg in self._retired:  # a cleaner pass ago: no fsync thread can still hold them
            seg.close()
        self._retired = [old]  # the commit thread may be syncing it this very moment
        self._new_dir_entries = True  # the rename is made durable with the next fsync

    def fsync(self) -> int:
        """Make appended batches durable: the dirty segments' data, and any new directory entries."""
        synced = 0
        for seg in self.segments[-2:]:
            if seg.dirty:
                seg.fsync()
                synced += 1
        if self._new_dir_entries:
            self._new_dir_entries = False
            sync_directory(self.path)
        return synced

    # --- reading ---

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding ``offset`` (b"" at the end of the log)."""
        if offset >= self.next_offset:
            return b""
        i = max(bisect_right(self._bases, offset) - 1, 0)
        data = self.segments[i].read(offset, max_bytes)
        while not data and i + 1 < len(self.segments):  # past its last batch (or emptied by compaction)
            i += 1
            data = self.segments[i].read(offset, max_bytes)
        return data

    def tail_headers(self, max_batches: int) -> list[bytes]:
        """The headers of the last ``max_batches`` batches, oldest first."""
        out: list[bytes] = []
        for seg in reversed(self.segments):
            n = len(seg.positions)
            take = min(n, max_batches - len(out))
            out[:0] = seg.headers(n - take)
            if len(out) >= max_batches:
                break
        return out

    def offset_for_time(self, ts: int) -> int | None:
        for seg in self.segments:
            if seg.max_ts and seg.max_timestamp >= ts:
                found = seg.offset_for_time(ts)
                if found is not None:
                    return found
        return None

    # --- retention ---

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int:
        """Delete whole segments (never the active one) older than ``retention_ms`` by their newest
        timestamp, or beyond ``retention_bytes`` in total (-1: no limit). Returns how many went."""
        removed = 0
        while len(self.segments) > 1:
            oldest = self.segments[0]
            too_old = retention_ms >= 0 and oldest.max_ts and now_ms - oldest.max_timestamp > retention_ms
            too_big = retention_bytes >= 0 and self.size_bytes - oldest.size >= retention_bytes
            if not (too_old or too_big):
                break
            self.segments.pop(0)
            self._bases.pop(0)
            oldest.close()
            oldest.path.unlink(missing_ok=True)
            removed += 1
        if removed:
            self._new_dir_entries = True
        return removed

    def close(self) -> None:
        self.closed = True
        for seg in self._retired + self.segments:
            seg.close()

    def delete(self) -> None:
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
