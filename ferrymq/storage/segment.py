"""The one segment file, for every record kind: a header, then frames back to back.

Header (20 bytes, big-endian): magic ``b"FMQS"`` | format version u16 | kind u8 | flags u8 |
base number u64 | CRC32C u32 of the 16 bytes before it. The magic and version let a future FerryMQ
refuse or migrate old files; the kind names the record format that follows (ferrymq.storage.formats:
queue-log records, or Kafka RecordBatch v2 as received); the base ties the file to its place in the
log even if it is renamed; the CRC tells a corrupt header from a valid one. Flag 1 (FLAG_COMPACTED)
marks a file written by stream compaction: only in and after such a file may numbers skip, so
anywhere else a batch whose base offset (outside its CRC) does not follow on is damage.

Frames are numbered: a queue-log record takes one number, a Kafka batch ``lastOffsetDelta + 1``
(its offsets), and a compacted stream may skip numbers between batches. The sparse index maps the
first number of a frame to its file position every ``index_interval_bytes`` (0: every frame, what
streams use so a fetch cuts at batch boundaries by bisection), with, per entry, the number after its
last frame, its frame count and its newest timestamp (the time index). Between entries a read walks
frame headers. The index is never persisted: rebuilding it is the scan recovery needs anyway.

Why recovery lives in ``open``: a segment is only usable once its tail is known good, so opening
scans every frame in large preads, truncates at the first torn or corrupt one, and reports what it
did (``RecoveryReport``). Reads use ``os.pread`` (no shared file offset, no mmap: a truncated mmap'd
file faults with SIGBUS instead of raising). Writes go straight to the OS, one ``pwrite`` per batch.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c

from ferrymq.storage.commit import sync_data
from ferrymq.storage.errors import CorruptRecord, CorruptSegment, OffsetOutOfRange, StorageError
from ferrymq.storage.formats import (
    FORMATS,
    KAFKA_BATCHES,
    KIND_QUEUE_LOG,
    QUEUE_RECORDS,
    RecordFormat,
)
from ferrymq.storage.formats import KIND_STREAM as KIND_STREAM  # re-exported: the kinds live in formats
from ferrymq.storage.records import DecodeFault, Record

MAGIC = b"FMQS"
FORMAT_VERSION = 1
FLAG_COMPACTED = 1  # header flag: a cleaner's output, whose last batches may be gone (a gap after it)
_HEADER = struct.Struct(">4sHBBQ")
HEADER_BYTES = _HEADER.size + 4  # 20, with the header CRC
DEFAULT_INDEX_INTERVAL_BYTES = QUEUE_RECORDS.index_interval_bytes
SCAN_CHUNK_BYTES = 1 << 20  # recovery reads this much per pread
_READ_GUESS_BYTES = 4096  # a read fetches this much first: one pread for most records
_WALK_CHUNK_BYTES = 8192


class TornHeader(CorruptSegment):
    """The header is incomplete or all zeros: the file was created but its header never reached disk.

    Only the log can decide this is harmless (nothing in such a file can have been fsynced)."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening a segment found and did; logged and counted by the caller (either record kind)."""

    path: str
    records_kept: int  # frames: queue-log records, or Kafka batches
    bytes_kept: int  # file size after recovery, header included
    bytes_truncated: int
    reason: DecodeFault | None  # None: the file ended on a frame boundary
    detail: str = ""

    @property
    def truncated(self) -> bool:
        return self.bytes_truncated > 0


def encode_header(kind: int, base: int, flags: int = 0) -> bytes:
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, kind, flags, base)
    return head + struct.pack(">I", crc32c.crc32c(head))


def decode_header(data: bytes, path: str) -> tuple[int, int, int]:
    """(kind, base, flags) from a header, or TornHeader / CorruptSegment."""
    if len(data) < HEADER_BYTES or not any(data[:HEADER_BYTES]):
        raise TornHeader(f"{path}: segment header missing or zero ({len(data)} bytes)")
    magic, version, kind, flags, base = _HEADER.unpack_from(data)
    (crc,) = struct.unpack_from(">I", data, _HEADER.size)
    if magic != MAGIC:
        raise CorruptSegment(f"{path}: bad magic {magic!r}")
    if crc != crc32c.crc32c(data[: _HEADER.size]):
        raise CorruptSegment(f"{path}: segment header CRC mismatch")
    if version != FORMAT_VERSION:
        raise CorruptSegment(f"{path}: unsupported segment format version {version}")
    if kind not in FORMATS:
        raise StorageError(f"{path}: segment kind {kind} not supported")
    return kind, base, flags


class Segment:
    """An open segment. Frames are numbered from ``base``; positions are byte offsets in the file.

    Not thread-safe, except that ``fsync()`` may run in another thread while this one appends, and
    ``frames()`` reads through a descriptor of its own (a cleaner thread may iterate a closed one).
    """

    FORMAT: RecordFormat = QUEUE_RECORDS

    def __init__(self, path: Path, fd: int, base: int, fmt: RecordFormat, index_interval_bytes: int) -> None:
        self.path = path
        self.base = base
        self.format = fmt
        self.kind = fmt.kind
        self.size = HEADER_BYTES
        self.count = 0  # frames held
        self.next_number = base  # the number after the last frame
        self.first_timestamp = -1  # newest timestamp of the first frame (Kafka's time roll)
        self.max_timestamp = -1
        self.dirty = False
        self.flags = 0  # FLAG_COMPACTED: written by the cleaner, so numbers may end short of the next file
        self.recovery: RecoveryReport | None = None
        self._fd = fd
        self._interval = index_interval_bytes
        self._idx_num = array("q")  # the sparse index: first number of a frame ...
        self._idx_pos = array("q")  # ... its position ...
        # ... and, for formats whose frames hold several numbers (Kafka batches): the number after
        # the entry's last frame, how many frames it spans, their newest timestamp. A queue log
        # (one number per frame, no gaps, no time) derives the first two and has no third: 16 bytes
        # an entry instead of 40, which is 30 MiB on a 5 GB backlog.
        self._compact = fmt.one_number_per_frame
        self._idx_end = array("q")
        self._idx_frames = array("q")
        self._idx_ts = array("q")  # (-1: none)
        self._cursor = (-1, 0)  # (number, position) after the last run read: sequential reads

    # --- lifecycle ---

    @classmethod
    def create(
        cls, path: str | os.PathLike[str], base: int, kind: int | None = None,
        index_interval_bytes: int | None = None,
    ) -> Segment:
        """A new, empty segment. Fails if the file exists: segments are never silently overwritten."""
        fmt = FORMATS[kind] if kind is not None else cls.FORMAT
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        seg = cls(path, fd, base, fmt, _interval(fmt, index_interval_bytes))
        try:
            seg._write_all(encode_header(fmt.kind, base), 0)
        except BaseException:
            seg.close()
            raise
        seg.dirty = True
        return seg

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], index_interval_bytes: int | None = None, verify_crc: bool = True,
    ) -> Segment:
        """Open and recover: keep every sound frame, truncate at the first torn or corrupt one.

        ``segment.recovery`` reports what was done. Raises TornHeader or CorruptSegment for a bad
        header, StorageError for a file of another record kind than this class reads.
        """
        path = Path(path)
        fd = os.open(path, os.O_RDWR)
        try:
            kind, base, flags = decode_header(os.pread(fd, HEADER_BYTES, 0), str(path))
            if kind != cls.FORMAT.kind:
                raise StorageError(f"{path}: segment kind {kind} is not a {cls.FORMAT.name} segment")
            seg = cls(path, fd, base, cls.FORMAT, _interval(cls.FORMAT, index_interval_bytes))
            seg.flags = flags
            seg._recover(os.fstat(fd).st_size, verify_crc)
        except BaseException:
            os.close(fd)
            raise
        return seg

    def _recover(self, file_size: int, verify: bool) -> None:
        pos, need = HEADER_BYTES, 0
        contiguous = not self.flags & FLAG_COMPACTED
        fault: DecodeFault | None = None
        detail = ""
        while pos < file_size:
            buf = os.pread(self._fd, min(max(SCAN_CHUNK_BYTES, need), file_size - pos), pos)
            frames, end, err = self.format.scan(buf, 0, self.next_number, verify, contiguous)
            for rel, first, count, ts in frames:
                self._note(pos + rel, first, count, ts)
            pos += end
            need = 0
            if err is None:
                continue
            if err.fault is DecodeFault.SHORT_READ and pos + err.needed <= file_size:
                need = err.needed  # the window ended inside a frame: read it whole
                continue
            fault, detail = err.fault, f"at position {pos}: {err.detail}"
            break
        truncated = file_size - pos
        if truncated:
            os.ftruncate(self._fd, pos)
            self.dirty = True  # the truncation itself should reach disk with the next fsync
        self.size = pos
        self.recovery = RecoveryReport(str(self.path), self.count, pos, truncated, fault, detail)

    def fsync(self) -> None:
        """Make everything appended so far durable. Called by the log, which group commit drives."""
        self.dirty = False  # cleared first: an append racing with the sync re-marks it
        sync_data(self._fd)

    def flush(self) -> None:
        """Appends are written to the OS as they happen (one pwrite per batch): nothing is buffered."""

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def next_offset(self) -> int:
        """The stream name for ``next_number``: the offset after the last batch."""
        return self.next_number

    # --- writing ---

    def append(self, records: list[bytes]) -> list[int]:
        """Append framed queue-log records with one write; returns their file positions."""
        if not records:
            return []
        positions: list[int] = []
        at = self.size
        for frame in records:
            positions.append(at)
            at += len(frame)
        self._write_batch(b"".join(records))
        self._note_records(positions)
        return positions

    def append_frames(self, data: bytes | bytearray, frames: list[tuple[int, int, int, int]]) -> None:
        """Append whole frames already laid out in ``data`` (``(start in data, first number, count,
        max timestamp)`` each: Kafka batches with their base offsets written in place), one pwrite."""
        start = self._write_batch(data)
        for rel, first, count, ts in frames:
            self._note(start + rel, first, count, ts)

    def _write_batch(self, data: bytes | bytearray) -> int:
        """One pwrite at the end. On a failed write (disk full) the file is cut back to its previous
        size and the error raised, so a half-written batch never stays behind a later one."""
        start = self.size
        try:
            self._write_all(data, start)
        except BaseException:
            try:
                os.ftruncate(self._fd, start)
            finally:
                self.dirty = True
            raise
        self.size = start + len(data)
        self.dirty = True
        return start

    def _write_all(self, data: bytes | bytearray, at: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, at)
            view = view[written:]
            at += written

    # --- the index ---

    def _note(self, position: int, first: int, count: int, ts: int) -> None:
        """Index one frame (recovery, and appends of whole frames)."""
        pos = self._idx_pos
        if not pos or position - pos[-1] >= self._interval:
            self._idx_num.append(first)
            pos.append(position)
            if not self._compact:
                self._idx_end.append(first + count)
                self._idx_frames.append(1)
                self._idx_ts.append(ts)
        elif not self._compact:
            self._idx_end[-1] = first + count
            self._idx_frames[-1] += 1
            if ts > self._idx_ts[-1]:
                self._idx_ts[-1] = ts
        if not self.count:
            self.first_timestamp = ts
        if ts > self.max_timestamp:
            self.max_timestamp = ts
        self.count += 1
        self.next_number = first + count

    def _note_records(self, positions: list[int]) -> None:
        """Index a run of one-number frames (queue-log records) with a few array writes per entry,
        not per record: this is the queue publish path."""
        n = self.next_number
        last = self._idx_pos[-1] if self._idx_pos else -(1 << 62)
        interval = self._interval
        for position in positions:
            if position - last >= interval:
                self._idx_num.append(n)
                self._idx_pos.append(position)
                last = position
            n += 1
        self.count += len(positions)
        self.next_number = n

    def _entry_end(self, i: int) -> int:
        """The number after index entry ``i``'s last frame."""
        if not self._compact:
            return self._idx_end[i]
        return self._idx_num[i + 1] if i + 1 < len(self._idx_num) else self.next_number

    def _entry_frames(self, i: int) -> int:
        """How many frames index entry ``i`` spans."""
        if not self._compact:
            return self._idx_frames[i]
        return self._entry_end(i) - self._idx_num[i]

    def _entry_stop(self, i: int) -> int:
        """The file position where index entry ``i``'s frames end."""
        return self._idx_pos[i + 1] if i + 1 < len(self._idx_pos) else self.size

    def _walk(self, pos: int, number: int, stop: int = -1) -> Iterator[tuple[int, int, int, int, int]]:
        """(position, size, first number, count, max timestamp) of each frame from ``pos``, by headers."""
        stop = self.size if stop < 0 else stop
        head = self.format.head_bytes
        frame = self.format.frame
        chunk = max(2 * self._interval, _WALK_CHUNK_BYTES)
        buf, buf_at = b"", pos
        while pos < stop:
            off = pos - buf_at
            if off + head > len(buf):
                buf, buf_at, off = os.pread(self._fd, min(chunk, stop - pos), pos), pos, 0
            info = frame(buf, off)
            if info is None:
                raise CorruptRecord(f"{self.path}: frame walk found no sound header at {pos}")
            size, first, count, ts = info
            first = number if first < 0 else first
            yield pos, size, first, count, ts
            pos += size
            number = first + count

    def position_of(self, number: int) -> int:
        """File position of the frame holding ``number`` (or, in a gap compaction left, the next one)."""
        if not (self.count and self.base <= number < self.next_number):
            raise OffsetOutOfRange(f"{self.path}: number {number} not in this segment")
        cur_n, cur_pos = self._cursor
        if cur_n == number:
            return cur_pos
        i = bisect_right(self._idx_num, number) - 1
        if i < 0:
            return self._idx_pos[0]
        if number >= self._entry_end(i):
            return self._idx_pos[i + 1]
        if self._entry_frames(i) == 1:
            return self._idx_pos[i]
        start_n, start_pos = self._idx_num[i], self._idx_pos[i]
        if start_n < cur_n < number and cur_pos < self._entry_stop(i):  # the cursor is closer
            start_n, start_pos = cur_n, cur_pos
        for pos, _size, first, count, _ts in self._walk(start_pos, start_n):
            if first + count > number:
                return pos
        raise CorruptRecord(f"{self.path}: frame walk ran off the end looking for {number}")

    # --- reading ---

    def span(self, number: int, max_bytes: int) -> tuple[int, int]:
        """(start, end) of whole frames from the one holding ``number``: at least one frame, then as
        many as fit in ``max_bytes``. Dense index: bisection only; sparse: a walk of one entry."""
        start = self.position_of(number)
        limit = start + max_bytes
        if self.size <= limit:
            return start, self.size
        j = bisect_right(self._idx_pos, limit) - 1
        at = self._idx_pos[j]
        end = at if at > start else -1
        if at < start:  # the frame at ``start`` lies inside entry j: walk from it
            at = start
        if self._entry_frames(j) == 1 and at == self._idx_pos[j]:
            return start, end if end > 0 else self._entry_stop(j)
        for pos, size, _f, _c, _t in self._walk(at, 0, stop=self._entry_stop(j)):
            if pos + size > limit:
                return start, end if end > 0 else pos + size
            end = pos + size
        return start, end

    def pread(self, start: int, end: int) -> bytes:
        return os.pread(self._fd, end - start, start)

    def read(self, position: int) -> Record:
        """The frame at a file position, CRC-checked: corrupt bytes raise, they are never returned."""
        return self._read_frame(position)[0]

    def _read_frame(self, position: int) -> tuple[Record, int]:
        if not HEADER_BYTES <= position < self.size:
            raise OffsetOutOfRange(f"{self.path}: position {position} outside the segment")
        guess = min(max(_READ_GUESS_BYTES, self.format.head_bytes), self.size - position)
        buf = os.pread(self._fd, guess, position)
        info = self.format.frame(buf, 0)
        if info is None:
            raise CorruptRecord(f"{self.path}: at position {position}: no sound frame header")
        size = info[0]
        if size > len(buf):
            buf += os.pread(self._fd, size - len(buf), position + len(buf))
        records, _end, err, _next = self.format.decode(buf[:size], 0)
        if not records:
            why = err.detail if err is not None else "empty"
            raise CorruptRecord(f"{self.path}: frame at position {position} fails its checks: {why}")
        return Record(position, records[0].type, records[0].payload), size

    def read_number(self, number: int) -> Record:
        """The frame holding number ``number``."""
        position = self.position_of(number)
        rec, size = self._read_frame(position)
        self._cursor = (number + 1, position + size) if self.format.kind == KIND_QUEUE_LOG else (-1, 0)
        return rec

    def read_run(self, number: int, max_bytes: int) -> list[Record]:
        """Frames from the one holding ``number``, in order, in one large pread (at least one, about
        ``max_bytes`` at most, never past the segment's end), each CRC-checked."""
        pos, records = self.read_run_at(number, max_bytes)
        return [Record(pos + r.position, r.type, r.payload) for r in records] if pos else records

    def read_run_at(self, number: int, max_bytes: int) -> tuple[int, list[Record]]:
        """``read_run``'s frames with positions relative to the returned file position (0: they are
        absolute already), so a reader that wants only payloads (queue paging) makes no second
        object per record."""
        pos = self.position_of(number)
        buf = os.pread(self._fd, min(max(max_bytes, self.format.head_bytes), self.size - pos), pos)
        records, end, err, next_number = self.format.decode(buf, number)
        if not records:
            return 0, [self.read_number(number)]
        if err is not None and err.fault is not DecodeFault.SHORT_READ:
            raise CorruptRecord(f"{self.path}: at position {pos + end}: {err.detail}")
        self._cursor = (next_number, pos + end)
        return pos, records

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(position, bytes) of every frame, read through a descriptor of its own, so a reader in
        another thread is never hurt by this segment being closed (or its number reused) meanwhile."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size, pos = self.size, HEADER_BYTES
            buf, buf_at = b"", pos
            while pos < size:
                off = pos - buf_at
                if off + self.format.head_bytes > len(buf):
                    buf, buf_at, off = os.pread(fd, min(SCAN_CHUNK_BYTES, size - pos), pos), pos, 0
                info = self.format.frame(buf, off)
                if info is None:
                    raise CorruptRecord(f"{self.path}: no sound frame header at {pos}")
                length = info[0]
                if off + length > len(buf):
                    want = min(max(length, SCAN_CHUNK_BYTES), size - pos)
                    buf, buf_at, off = os.pread(fd, want, pos), pos, 0
                yield pos, buf[off : off + length]
                pos += length
        finally:
            os.close(fd)

    def heads(self, last: int) -> list[bytes]:
        """The first ``format.head_bytes`` of each of the last ``last`` frames, oldest first."""
        head = self.format.head_bytes
        if len(self._idx_pos) == self.count:  # every frame indexed: no walk
            at = self._idx_pos
            return [os.pread(self._fd, head, at[i]) for i in range(max(0, len(at) - last), len(at))]
        tail = [pos for pos, *_ in self._walk(HEADER_BYTES, self.base)][-last:] if last > 0 else []
        return [os.pread(self._fd, head, pos) for pos in tail]

    def number_for_time(self, ts: int) -> int | None:
        """First number of the first frame whose newest timestamp is at or after ``ts`` (None: none is)."""
        for i, t in enumerate(self._idx_ts):  # entries are few next to records
            if t >= ts:
                if self._entry_frames(i) == 1:
                    return self._idx_num[i]
                for _pos, _size, first, _count, fts in self._walk(self._idx_pos[i], self._idx_num[i]):
                    if fts >= ts:
                        return first
        return None


class StreamSegment(Segment):
    """A segment of Kafka record batches (kind KIND_STREAM): the same engine, the batch format."""

    FORMAT: RecordFormat = KAFKA_BATCHES

    def batches(self) -> Iterator[tuple[int, bytes]]:
        return self.frames()

    def offset_for_time(self, ts: int) -> int | None:
        return self.number_for_time(ts)


def _interval(fmt: RecordFormat, given: int | None) -> int:
    return fmt.index_interval_bytes if given is None else given
