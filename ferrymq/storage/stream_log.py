"""A stream partition's log: the one log engine (ferrymq.storage.log) over Kafka batch segments,
with the stream's own policy on top: Kafka's roll rules (by size before an append, by record
timestamps for segment.ms), fetches of whole batches by offset, the time index, retention by time
and size, and the swap-in of compacted segments (ferrymq.storage.stream_compact).

Batches are stored exactly as received, their base offsets already written in place, so an append
is one pwrite and indexes each batch by its header: no per-record work.
"""

from __future__ import annotations

import os
import shutil
import struct
from bisect import bisect_right
from pathlib import Path

from ferrymq.core.clock import Clock
from ferrymq.storage.commit import replace_file
from ferrymq.storage.log import SegmentedLog
from ferrymq.storage.log import segment_name as segment_name  # re-exported for stream callers
from ferrymq.storage.segment import HEADER_BYTES, Segment, StreamSegment

SEGMENT_BYTES_DEFAULT = 1 << 30  # Kafka's segment.bytes default
_BASE = struct.Struct(">q")  # a batch's baseOffset, written in place by the caller
LOG_START_FILE = "log-start-offset"  # DeleteRecords' start (Kafka's log-start-offset-checkpoint)


class StreamLog(SegmentedLog):
    """One partition. Not thread-safe, except that ``fsync()`` may run in the commit thread."""

    SEGMENT = StreamSegment

    def __init__(self, path: str | os.PathLike[str], segment_bytes: int = SEGMENT_BYTES_DEFAULT,
                 segment_ms: int = -1, clock: Clock | None = None) -> None:
        self.segment_ms = segment_ms  # roll when a batch is this much newer than the segment's first
        self.cleaned_upto = 0  # compaction: inactive segments below this offset were cleaned
        self.tombstone_deadline_ms = -1  # compaction: when a kept tombstone expires (-1: none kept)
        self._retired: list[Segment] = []  # replaced by compaction, closed one pass later
        super().__init__(path, segment_bytes, None, clock)
        self._log_start = self._stored_log_start()

    @property
    def path(self) -> Path:
        return self.directory

    @property
    def start_offset(self) -> int:
        """The log start offset: the first segment's base, or past it where DeleteRecords moved it
        inside that segment (compaction never moves it)."""
        return max(self._segments[0].base, min(self._log_start, self.next_offset))

    def _stored_log_start(self) -> int:
        path = self.directory / LOG_START_FILE
        return int(path.read_text()) if path.exists() else 0

    def advance_start(self, offset: int) -> int:
        """Kafka's DeleteRecords: nothing below ``offset`` is readable any more. The new start is made
        durable first; then the segments wholly below it go by the path retention takes (a log
        emptied to its end rolls first, so its last segment can go too). Returns the start."""
        offset = min(offset, self.next_offset)
        if offset <= self.start_offset:
            return self.start_offset
        replace_file(self.directory / LOG_START_FILE, str(offset).encode())
        self._log_start = offset
        if offset == self.next_offset:
            self.roll()
        self.delete_segments_before(offset)
        return self.start_offset

    # --- writing ---

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int]]) -> int:
        """Append batches whose base offsets are already written in ``data``; ``batches`` holds
        ``(start in data, count, max timestamp)`` each. Returns the next offset."""
        with self._state_lock:
            active = self._segments[-1]
            full = active.size + len(data) > self.segment_bytes
            if active.size > HEADER_BYTES and (full or self._too_old(active, batches)):
                active = self._add_segment(active.next_number)
            base = active.next_number
            frames = []
            for start, count, max_ts in batches:
                if _BASE.unpack_from(data, start)[0] != base:  # recovery would cut it off as damage
                    raise ValueError(f"batch at {start} carries base offset "
                                     f"{_BASE.unpack_from(data, start)[0]}, the log is at {base}")
                frames.append((start, base, count, max_ts))
                base += count
            active.append_frames(data, frames)
        return base

    def _too_old(self, active: Segment, batches: list[tuple[int, int, int]]) -> bool:
        """Kafka's time roll: by record timestamps (the first batch's against the newest), no clock."""
        if self.segment_ms < 0 or not active.count:
            return False
        return batches[-1][2] - active.first_timestamp > self.segment_ms

    def replace_segment(self, old: Segment, new: Segment) -> None:
        """Swap in a compacted copy of an inactive segment (same base, same offsets)."""
        with self._state_lock:
            i = self._segments.index(old)
            assert new.base == old.base and i < len(self._segments) - 1, "only inactive segments are replaced"
            self._segments[i] = new
            for seg in self._retired:  # a cleaner pass ago: no fsync thread can still hold them
                seg.close()
            self._retired = [old]  # the commit thread may be syncing it this very moment
            self._dir_dirty = True  # the rename is made durable with the next fsync

    # --- reading ---

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding ``offset`` (b"" at the end of the log): at least one,
        then as many as fit in ``max_bytes``, never crossing a segment boundary."""
        if offset >= self.next_offset:
            return b""
        i = max(bisect_right(self._bases, offset) - 1, 0)
        segs = self._segments
        while i < len(segs):  # past a segment's last batch (or a segment emptied by compaction)
            seg = segs[i]
            if seg.count and max(offset, seg.base) < seg.next_number:
                start, end = seg.span(max(offset, seg.base), max_bytes)
                return seg.pread(start, end)
            i += 1
        return b""

    def tail_headers(self, max_batches: int) -> list[bytes]:
        """The headers of the last ``max_batches`` batches, oldest first."""
        out: list[bytes] = []
        for seg in reversed(self._segments):
            out[:0] = seg.heads(max_batches - len(out))
            if len(out) >= max_batches:
                break
        return out

    def batch_headers(self) -> list[bytes]:
        """Every batch's header, oldest first (transaction state is rebuilt from them)."""
        out: list[bytes] = []
        for seg in list(self._segments):
            if seg.count:
                out += seg.heads(seg.count)
        return out

    def offset_for_time(self, ts: int) -> int | None:
        for seg in self._segments:
            if seg.count and seg.max_timestamp >= ts:
                found = seg.number_for_time(ts)
                if found is not None:
                    return found
        return None

    # --- retention ---

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int:
        """Delete whole segments (never the active one) older than ``retention_ms`` by their newest
        timestamp, or beyond ``retention_bytes`` in total (-1: no limit). Returns how many went."""
        n, size = 0, self.size_bytes
        while n + 1 < len(self._segments):
            oldest = self._segments[n]
            too_old = retention_ms >= 0 and oldest.count and now_ms - oldest.max_timestamp > retention_ms
            too_big = retention_bytes >= 0 and size - oldest.size >= retention_bytes
            if not (too_old or too_big):
                break
            size -= oldest.size
            n += 1
        if n:
            self._drop_front(n)
        return n

    def close(self) -> None:
        super().close()
        for seg in self._retired:
            seg.close()

    def delete(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)

