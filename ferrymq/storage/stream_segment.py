"""One stream segment: the shared segment header (kind KIND_STREAM), then Kafka RecordBatch v2
exactly as produced, back to back, each with its base offset written in place.

Why a reader of its own: a batch frames itself (baseOffset, batchLength, CRC32C over attributes..end),
so the queue-log record framing would only add bytes. The in-memory index (batch base offset, file
position, max timestamp per batch) is never persisted: opening scans the batches, truncates a torn or
corrupt tail, and rebuilds it, which is the scan recovery needs anyway.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

import crc32c

from ferrymq.storage.commit import sync_data
from ferrymq.storage.errors import CorruptSegment
from ferrymq.storage.segment import HEADER_BYTES, KIND_STREAM, SCAN_CHUNK_BYTES, decode_header, encode_header

BATCH_HEADER_BYTES = 61
LOG_OVERHEAD_BYTES = 12
_FRAME = struct.Struct(">qi")  # baseOffset, batchLength
_INFO = struct.Struct(">qiibIhiqq")  # ... up to maxTimestamp
MAX_BATCH_BYTES = 1 << 30  # a length above this is garbage, not a batch


class StreamSegment:
    """An open stream segment. Offsets are Kafka offsets; positions are byte offsets in the file."""

    def __init__(self, path: Path, fd: int, base: int) -> None:
        self.path = path
        self.base = base
        self.size = HEADER_BYTES
        self.next_offset = base
        self.dirty = False
        self.bytes_truncated = 0
        self._fd = fd
        self.offsets = array("q")  # base offset of each batch
        self.positions = array("q")  # its file position
        self.max_ts = array("q")  # its max timestamp (the time index)
        self.ends = array("q")  # the offset after its last (compaction leaves gaps between batches)

    @classmethod
    def create(cls, path: str | os.PathLike[str], base: int) -> StreamSegment:
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        seg = cls(path, fd, base)
        os.pwrite(fd, encode_header(KIND_STREAM, base), 0)
        seg.dirty = True
        return seg

    @classmethod
    def open(cls, path: str | os.PathLike[str], verify_crc: bool = True) -> StreamSegment:
        """Open and recover: keep every sound batch, truncate at the first torn or corrupt one."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR)
        try:
            kind, base = decode_header(os.pread(fd, HEADER_BYTES, 0), str(path))
            if kind != KIND_STREAM:
                raise CorruptSegment(f"{path}: segment kind {kind} is not a stream")
            seg = cls(path, fd, base)
            seg._recover(os.fstat(fd).st_size, verify_crc)
        except BaseException:
            os.close(fd)
            raise
        return seg

    def _recover(self, file_size: int, verify_crc: bool) -> None:
        pos = HEADER_BYTES
        buf, buf_at = b"", pos
        while pos + BATCH_HEADER_BYTES <= file_size:
            off = pos - buf_at
            if off + BATCH_HEADER_BYTES > len(buf):
                buf, buf_at, off = os.pread(self._fd, min(SCAN_CHUNK_BYTES, file_size - pos), pos), pos, 0
            base, length, _e, magic, crc, _a, last_delta, _t, max_ts = _INFO.unpack_from(buf, off)
            size = LOG_OVERHEAD_BYTES + length
            if magic != 2 or not BATCH_HEADER_BYTES <= size <= MAX_BATCH_BYTES or pos + size > file_size:
                break
            if base < self.next_offset or last_delta < 0:
                break
            if verify_crc:
                if off + size > len(buf):
                    buf, buf_at, off = os.pread(self._fd, max(size, SCAN_CHUNK_BYTES), pos), pos, 0
                if crc32c.crc32c(memoryview(buf)[off + 21 : off + size]) != crc:
                    break
            self._note(base, pos, max_ts, last_delta + 1)
            pos += size
        self.bytes_truncated = file_size - pos
        if self.bytes_truncated:
            os.ftruncate(self._fd, pos)
            self.dirty = True
        self.size = pos

    def _note(self, base: int, pos: int, max_ts: int, count: int) -> None:
        self.offsets.append(base)
        self.positions.append(pos)
        self.max_ts.append(max_ts)
        self.ends.append(base + count)
        self.next_offset = base + count

    # --- writing ---

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int, int]]) -> None:
        """Write whole batches (``(start, base offset, count, max_ts)`` each) with one pwrite.

        A failed write is cut back so a half-written batch never stays behind a later one."""
        start = self.size
        view = memoryview(data)
        at = start
        try:
            while view:
                n = os.pwrite(self._fd, view, at)
                view, at = view[n:], at + n
        except BaseException:
            os.ftruncate(self._fd, start)
            self.dirty = True
            raise
        for rel, base, count, max_ts in batches:
            self._note(base, start + rel, max_ts, count)
        self.size = start + len(data)
        self.dirty = True

    def fsync(self) -> None:
        self.dirty = False
        sync_data(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    # --- reading ---

    @property
    def max_timestamp(self) -> int:
        return max(self.max_ts) if self.max_ts else -1

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding ``offset``: at least one, then up to ``max_bytes``."""
        n = len(self.offsets)
        i = max(bisect_right(self.offsets, offset) - 1, 0)
        if i < n and self.ends[i] <= offset:  # a gap left by compaction: the next batch holds it
            i += 1
        if i >= n:
            return b""
        start = self.positions[i]
        limit = start + max_bytes
        if self.size <= limit:
            end = self.size
        else:
            j = bisect_right(self.positions, limit) - 1  # the last batch boundary within the limit
            end = self.positions[j] if j > i else (self.positions[i + 1] if i + 1 < n else self.size)
        return os.pread(self._fd, end - start, start)

    def batches(self) -> Iterator[tuple[int, bytes]]:
        """(position, bytes) of every batch, read through a descriptor of its own, so a reader in
        another thread is never hurt by this segment being closed (or its number reused) meanwhile."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            buf, buf_at = b"", HEADER_BYTES
            for i in range(len(self.positions)):
                pos = self.positions[i]
                end = self.positions[i + 1] if i + 1 < len(self.positions) else self.size
                if end - buf_at > len(buf) or pos < buf_at:
                    buf, buf_at = os.pread(fd, max(end - pos, SCAN_CHUNK_BYTES), pos), pos
                yield pos, buf[pos - buf_at : end - buf_at]
        finally:
            os.close(fd)

    def headers(self, first: int = 0) -> list[bytes]:
        """The 61-byte header of each batch from index ``first`` (producer state is rebuilt from them)."""
        at = self.positions
        return [os.pread(self._fd, BATCH_HEADER_BYTES, at[i]) for i in range(first, len(at))]

    def offset_for_time(self, ts: int) -> int | None:
        """Base offset of the first batch whose max timestamp is at or after ``ts`` (None: none is)."""
        for i, t in enumerate(self.max_ts):  # the time index: batches are few next to records
            if t >= ts:
                return self.offsets[i]
        return None
