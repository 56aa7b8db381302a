"""A timer heap for held items (delayed messages, later other timers).

Timers are data: the core pushes (due time, item), the shell asks ``next_deadline_ms`` when to
wake it and then calls ``pop_due(now)``. No clock is read here, so tests fast-forward freely.
"""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")


class DelayQueue(Generic[T]):
    """Items released in due order; equal due times keep push order (a sequence number breaks
    the tie, so items themselves are never compared)."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, T]] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due_ms: int, item: T) -> None:
        heapq.heappush(self._heap, (due_ms, self._seq, item))
        self._seq += 1

    def items(self) -> list[T]:
        """Every held item, in no particular order (for counting, not the hot path)."""
        return [entry[2] for entry in self._heap]

    def held(self, limit: int) -> list[tuple[int, T]]:
        """(due ms, item) of at most ``limit`` held items, in heap order: the earliest first,
        then the heap's top levels (each due no later than what lies below it). O(limit), for
        looking (the dashboard's retry schedule), never the whole heap."""
        return [(entry[0], entry[2]) for entry in self._heap[:limit]]

    def pop_due(self, now_ms: int) -> list[T]:
        """Remove and return every item due at or before ``now_ms``, earliest first."""
        out: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_deadline_ms(self) -> int | None:
        """When the earliest item falls due, or None when nothing is held."""
        return self._heap[0][0] if self._heap else None
