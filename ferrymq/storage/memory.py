"""MemoryLog and MemoryStreamLog: the log contracts (queue records, stream batches) without files,
for tests and for brokers run with no data directory.

Why it exists: the contract suite runs over every store, so the core and the server can be tested
against MemoryLog quickly and trust that Log behaves the same. It validates records like Log does
(same bounds, same errors) so a test passing here does not fail only on disk.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Sequence

from ferrymq.storage.errors import OffsetOutOfRange
from ferrymq.storage.formats import BATCH_HEADER_BYTES
from ferrymq.storage.records import MAX_PAYLOAD_BYTES, MAX_RECORD_TYPE


class _InMemory:
    """What both memory stores share: memory is their durable medium, so there is nothing to
    buffer, sync, lose in a simulated power cut, or release."""

    def flush(self) -> None:
        """Nothing is buffered."""

    def fsync(self) -> int:
        """Nothing to make durable: returns 0 fsync calls."""
        return 0

    @property
    def dirty(self) -> bool:
        return False

    def crash(self, rng: object = None) -> None:
        """A simulated power loss loses nothing here."""

    def close(self) -> None:
        """Nothing to release."""


class MemoryLog(_InMemory):
    """Records by offset in a deque. Everything is "durable" at once; ``crash()`` loses nothing."""

    def __init__(self) -> None:
        self._records: deque[tuple[int, bytes]] = deque()
        self._first = 0

    @property
    def first_offset(self) -> int:
        return self._first

    @property
    def next_offset(self) -> int:
        return self._first + len(self._records)

    def append(self, batch: Sequence[tuple[int, bytes]]) -> list[int]:
        checked: list[tuple[int, bytes]] = []
        for type_, payload in batch:
            if not 0 <= type_ <= MAX_RECORD_TYPE:
                raise ValueError(f"record type {type_} outside 0..{MAX_RECORD_TYPE}")
            if len(payload) > MAX_PAYLOAD_BYTES:
                raise ValueError(f"record payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
            checked.append((type_, bytes(payload)))
        first = self.next_offset
        self._records.extend(checked)
        return list(range(first, first + len(checked)))

    def read(self, offset: int) -> tuple[int, bytes]:
        if not self._first <= offset < self.next_offset:
            raise OffsetOutOfRange(f"offset {offset} outside [{self._first}, {self.next_offset})")
        return self._records[offset - self._first]

    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        first = self.read(offset)
        out = [first]
        size = len(first[1])
        i = offset + 1
        while i < self.next_offset and size < max_bytes:
            rec = self._records[i - self._first]
            out.append(rec)
            size += len(rec[1])
            i += 1
        return out

    def roll(self) -> None:
        """No segments to roll."""

    def delete_segments_before(self, offset: int) -> int:
        """Drops exactly the records below ``offset`` (a memory log has no segment granularity)."""
        reclaimed = 0
        while self._records and self._first < offset:
            self._records.popleft()
            self._first += 1
            reclaimed += 1
        return reclaimed



class MemoryStreamLog(_InMemory):
    """The StreamLog contract in memory: batches as appended (base offsets written in place), by
    offset. Everything is "durable" at once; ``crash()`` loses nothing. Retention works batch by
    batch (no segments here) and never drops the newest batch, as a file log keeps its active
    segment."""

    def __init__(self) -> None:
        self._batches: list[bytes] = []
        self._bases: list[int] = []
        self._ends: list[int] = []
        self._max_ts: list[int] = []
        self._start = 0
        self._next = 0

    @property
    def start_offset(self) -> int:
        return max(self._bases[0], self._start) if self._bases else self._start

    first_offset = start_offset

    def advance_start(self, offset: int) -> int:
        """DeleteRecords (StreamLog.advance_start): batches wholly below ``offset`` go."""
        self._start = max(self._start, min(offset, self._next))
        while self._batches and self._ends[0] <= self._start:
            for column in (self._batches, self._bases, self._ends, self._max_ts):
                column.pop(0)
        return self.start_offset

    @property
    def next_offset(self) -> int:
        return self._next

    @property
    def size_bytes(self) -> int:
        return sum(len(b) for b in self._batches)

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int]]) -> int:
        starts = [start for start, _, _ in batches] + [len(data)]
        for i, (start, count, max_ts) in enumerate(batches):
            self._batches.append(bytes(data[start : starts[i + 1]]))
            self._bases.append(self._next)
            self._next += count
            self._ends.append(self._next)
            self._max_ts.append(max_ts)
        return self._next

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one holding ``offset``: at least one, then as many as fit."""
        i = max(bisect_right(self._bases, offset) - 1, 0)
        while i < len(self._batches) and self._ends[i] <= offset:
            i += 1
        if i >= len(self._batches):
            return b""
        out = [self._batches[i]]
        size = len(out[0])
        for batch in self._batches[i + 1 :]:
            if size + len(batch) > max_bytes:
                break
            out.append(batch)
            size += len(batch)
        return b"".join(out)

    def tail_headers(self, max_batches: int) -> list[bytes]:
        return [b[:BATCH_HEADER_BYTES] for b in self._batches[-max_batches:]] if max_batches > 0 else []

    def offset_for_time(self, ts: int) -> int | None:
        for base, max_ts in zip(self._bases, self._max_ts):
            if max_ts >= ts:
                return base
        return None

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int:
        removed = 0
        size = self.size_bytes
        while len(self._batches) > 1:
            too_old = retention_ms >= 0 and now_ms - self._max_ts[0] > retention_ms
            too_big = retention_bytes >= 0 and size - len(self._batches[0]) >= retention_bytes
            if not (too_old or too_big):
                break
            size -= len(self._batches[0])
            for column in (self._batches, self._bases, self._ends, self._max_ts):
                column.pop(0)
            removed += 1
        return removed

    def delete(self) -> None:
        self._batches.clear()
