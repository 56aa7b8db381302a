"""MemoryLog: the log contract without files, for tests and for brokers run with no data directory.

Why it exists: the contract suite runs over every store, so the core and the server can be tested
against MemoryLog quickly and trust that Log behaves the same. It validates records like Log does
(same bounds, same errors) so a test passing here does not fail only on disk.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ferrymq.storage.errors import OffsetOutOfRange
from ferrymq.storage.records import MAX_PAYLOAD_BYTES, MAX_RECORD_TYPE


class MemoryLog:
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

    def flush(self) -> None:
        """Nothing is buffered."""

    def fsync(self) -> int:
        """Nothing to make durable: returns 0 fsync calls."""
        return 0

    @property
    def dirty(self) -> bool:
        return False

    def crash(self, rng: object = None) -> None:
        """A simulated power loss loses nothing here: memory is this store's durable medium."""

    def close(self) -> None:
        """Nothing to release."""
