"""One append-only segment file: a header, then framed records back to back.

Header (20 bytes, big-endian): magic ``b"FMQS"`` | format version u16 | kind u8 | flags u8 (0) |
base record number u64 | CRC32C u32 of the 16 bytes before it. The magic and version let a future
FerryMQ refuse or migrate old files; the kind says which framing follows (queue-log records now,
Kafka record batches later, sharing this code); the base ties the file to its place in the log even
if it is renamed; the CRC tells a corrupt header from a valid one.

Why recovery lives in ``open``: a segment is only usable once its tail is known good, so opening
scans every record, truncates at the first torn or corrupt one, and rebuilds the sparse index (never
persisted: rebuilding it is the same scan recovery needs anyway). Reads use ``os.pread`` (no shared
file offset, no mmap: a truncated mmap'd file faults with SIGBUS instead of raising).

Writes go straight to the OS, one ``pwrite`` per batch, so there is no user-space buffer to lose or
to serve reads from; ``flush()`` therefore has nothing to do and exists for the contract.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

from ferrymq.storage.commit import sync_data
from ferrymq.storage.errors import CorruptRecord, CorruptSegment, OffsetOutOfRange, StorageError
from ferrymq.storage.records import (
    MAX_RECORD_BODY_BYTES,
    PREFIX_BYTES,
    DecodeFault,
    Record,
    check_prefix,
    decode_records,
    record_crc,
)

MAGIC = b"FMQS"
FORMAT_VERSION = 1
KIND_QUEUE_LOG = 1  # records framed by ferrymq.storage.records
KIND_STREAM = 2  # Kafka RecordBatch v2 back to back: ferrymq.storage.stream_segment
_HEADER = struct.Struct(">4sHBBQ")
HEADER_BYTES = _HEADER.size + 4  # 20, with the header CRC
DEFAULT_INDEX_INTERVAL_BYTES = 4096  # one index entry per this many bytes of records
SCAN_CHUNK_BYTES = 1 << 20  # recovery reads this much per pread
_READ_GUESS_BYTES = 4096  # a read fetches this much first: one pread for most records
_LENGTH = struct.Struct(">I")


class TornHeader(CorruptSegment):
    """The header is incomplete or all zeros: the file was created but its header never reached disk.

    Only the log can decide this is harmless (nothing in such a file can have been fsynced)."""


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening a segment found and did; logged and counted by the caller."""

    path: str
    records_kept: int
    bytes_kept: int  # file size after recovery, header included
    bytes_truncated: int
    reason: DecodeFault | None  # None: the file ended on a record boundary
    detail: str = ""

    @property
    def truncated(self) -> bool:
        return self.bytes_truncated > 0


def encode_header(kind: int, base: int) -> bytes:
    head = _HEADER.pack(MAGIC, FORMAT_VERSION, kind, 0, base)
    return head + struct.pack(">I", google_crc32c.value(head))


def decode_header(data: bytes, path: str) -> tuple[int, int]:
    """(kind, base) from a header, or TornHeader / CorruptSegment."""
    if len(data) < HEADER_BYTES or not any(data[:HEADER_BYTES]):
        raise TornHeader(f"{path}: segment header missing or zero ({len(data)} bytes)")
    magic, version, kind, _flags, base = _HEADER.unpack_from(data)
    (crc,) = struct.unpack_from(">I", data, _HEADER.size)
    if magic != MAGIC:
        raise CorruptSegment(f"{path}: bad magic {magic!r}")
    if crc != google_crc32c.value(data[: _HEADER.size]):
        raise CorruptSegment(f"{path}: segment header CRC mismatch")
    if version != FORMAT_VERSION:
        raise CorruptSegment(f"{path}: unsupported segment format version {version}")
    if kind not in (KIND_QUEUE_LOG, KIND_STREAM):
        raise StorageError(f"{path}: segment kind {kind} not supported yet")
    return kind, base


class Segment:
    """An open segment. Records are numbered from ``base``; positions are byte offsets in the file.

    Not thread-safe, except that ``fsync()`` may run in another thread while this one appends.
    """

    def __init__(self, path: Path, fd: int, base: int, kind: int, index_interval_bytes: int) -> None:
        self.path = path
        self.base = base
        self.kind = kind
        self.size = HEADER_BYTES
        self.count = 0
        self.dirty = False
        self.recovery: RecoveryReport | None = None
        self._fd = fd
        self._interval = index_interval_bytes
        self._idx_num = array("Q", [0])  # sparse index: record number (relative) ...
        self._idx_pos = array("Q", [HEADER_BYTES])  # ... -> file position
        self._cursor = (0, HEADER_BYTES)  # (record number, position) after the last read: sequential reads

    # --- lifecycle ---

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        base: int,
        kind: int = KIND_QUEUE_LOG,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
    ) -> Segment:
        """A new, empty segment. Fails if the file exists: segments are never silently overwritten."""
        path = Path(path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        seg = cls(path, fd, base, kind, index_interval_bytes)
        try:
            seg._write_all(encode_header(kind, base), 0)
        except BaseException:
            seg.close()
            raise
        seg.dirty = True
        return seg

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES
    ) -> Segment:
        """Open and recover: keep every good record, truncate at the first torn or corrupt one.

        ``segment.recovery`` reports what was done. Raises TornHeader or CorruptSegment for a bad header.
        """
        path = Path(path)
        fd = os.open(path, os.O_RDWR)
        try:
            kind, base = decode_header(os.pread(fd, HEADER_BYTES, 0), str(path))
            if kind != KIND_QUEUE_LOG:  # stream segments have their own reader (stream_segment)
                raise StorageError(f"{path}: segment kind {kind} is not a queue log")
            seg = cls(path, fd, base, kind, index_interval_bytes)
            seg._recover(os.fstat(fd).st_size)
        except BaseException:
            os.close(fd)
            raise
        return seg

    def _recover(self, file_size: int) -> None:
        pos = HEADER_BYTES
        need = 0
        fault: DecodeFault | None = None
        detail = ""
        while pos < file_size:
            buf = os.pread(self._fd, min(max(SCAN_CHUNK_BYTES, need), file_size - pos), pos)
            records, end, err = decode_records(buf, 0)
            for rec in records:
                self._note_record(pos + rec.position, PREFIX_BYTES + len(rec.payload))
            pos += end
            need = 0
            if err is None:
                continue
            if err.fault is DecodeFault.SHORT_READ and pos + err.needed <= file_size:
                need = err.needed  # the window ended inside a record: read it whole
                continue
            fault, detail = err.fault, f"at position {pos}: {err.detail}"
            break
        truncated = file_size - pos
        if truncated:
            os.ftruncate(self._fd, pos)
            self.dirty = True  # the truncation itself should reach disk with the next fsync
        self.size = pos
        self.recovery = RecoveryReport(str(self.path), self.count, pos, truncated, fault, detail)

    def flush(self) -> None:
        """Appends are written to the OS as they happen (one pwrite per batch): nothing is buffered."""

    def fsync(self) -> None:
        """Make everything appended so far durable. Called by the log, which group commit drives."""
        self.dirty = False  # cleared first: an append racing with the sync re-marks it
        sync_data(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def next_number(self) -> int:
        return self.base + self.count

    # --- writing ---

    def append(self, records: list[bytes]) -> list[int]:
        """Append framed records with one write; returns their file positions.

        On a failed write (disk full) the file is cut back to its previous size and the error raised,
        so a half-written batch never stays behind a later one.
        """
        if not records:
            return []
        start = self.size
        positions: list[int] = []
        at = start
        for frame in records:
            positions.append(at)
            at += len(frame)
        try:
            self._write_all(b"".join(records), start)
        except BaseException:
            try:
                os.ftruncate(self._fd, start)
            finally:
                self.dirty = True
            raise
        for pos, frame in zip(positions, records):
            self._note_record(pos, len(frame))
        self.size = at
        self.dirty = True
        return positions

    def _write_all(self, data: bytes, at: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, at)
            view = view[written:]
            at += written

    def _note_record(self, position: int, length: int) -> None:
        if position - self._idx_pos[-1] >= self._interval:
            self._idx_num.append(self.count)
            self._idx_pos.append(position)
        self.count += 1

    # --- reading ---

    def read(self, position: int) -> Record:
        """The record at a file position, CRC-checked: corrupt bytes raise, they are never returned."""
        if not HEADER_BYTES <= position < self.size:
            raise OffsetOutOfRange(f"{self.path}: position {position} outside the segment")
        buf = os.pread(self._fd, min(_READ_GUESS_BYTES, self.size - position), position)
        prefix = check_prefix(buf, 0)
        if isinstance(prefix, tuple) and PREFIX_BYTES - 1 + prefix[0] > len(buf):
            buf += os.pread(self._fd, PREFIX_BYTES - 1 + prefix[0] - len(buf), position + len(buf))
            prefix = check_prefix(buf, 0)
        if not isinstance(prefix, tuple):
            raise CorruptRecord(f"{self.path}: at position {position}: {prefix.detail}")
        length, crc, type_ = prefix
        payload = buf[PREFIX_BYTES : PREFIX_BYTES - 1 + length]
        if len(payload) != length - 1 or record_crc(type_, payload) != crc:
            raise CorruptRecord(f"{self.path}: record at position {position} fails its CRC32C")
        return Record(position, type_, payload)

    def position_of(self, number: int) -> int:
        """File position of record ``number`` (absolute), via the sparse index and a short walk."""
        rel = number - self.base
        if not 0 <= rel < self.count:
            raise OffsetOutOfRange(f"{self.path}: record {number} not in this segment")
        cur_rel, cur_pos = self._cursor
        if cur_rel == rel:
            return cur_pos
        i = bisect_right(self._idx_num, rel) - 1
        n, pos = self._idx_num[i], self._idx_pos[i]
        if cur_rel < rel and cur_rel > n:  # the cursor is closer than the index entry
            n, pos = cur_rel, cur_pos
        buf = b""
        buf_at = pos
        while n < rel:
            off = pos - buf_at
            if off + 4 > len(buf):
                buf = os.pread(self._fd, min(2 * self._interval, self.size - pos), pos)
                buf_at, off = pos, 0
                if len(buf) < 4:
                    raise CorruptRecord(f"{self.path}: record walk ran off the end at {pos}")
            (length,) = _LENGTH.unpack_from(buf, off)
            if not 0 < length <= MAX_RECORD_BODY_BYTES:
                raise CorruptRecord(f"{self.path}: bad record length {length} at {pos}")
            pos += PREFIX_BYTES - 1 + length
            n += 1
        return pos

    def read_run(self, number: int, max_bytes: int) -> list[Record]:
        """Records from ``number`` on, in order, in one large pread (at least one record, at most
        about ``max_bytes``, never past the segment's end): sequential reads without a call each."""
        pos = self.position_of(number)
        buf = os.pread(self._fd, min(max(max_bytes, PREFIX_BYTES), self.size - pos), pos)
        records, end, err = decode_records(buf, 0)
        if not records:
            return [self.read_number(number)]
        if err is not None and err.fault is not DecodeFault.SHORT_READ:
            raise CorruptRecord(f"{self.path}: at position {pos + end}: {err.detail}")
        self._cursor = (number - self.base + len(records), pos + end)
        return [Record(pos + r.position, r.type, r.payload) for r in records]

    def read_number(self, number: int) -> Record:
        """The record with absolute number ``number``."""
        rec = self.read(self.position_of(number))
        self._cursor = (number - self.base + 1, rec.position + PREFIX_BYTES + len(rec.payload))
        return rec
