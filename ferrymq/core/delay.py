"""A timer heap for held items (delayed messages): timers are data, the shell wakes us."""

from __future__ import annotations

import heapq
from typing import Generic, TypeVar

T = TypeVar("T")


class DelayQueue(Generic[T]):
    def __init__(self) -> None:
        self._heap: list[tuple[int, int, T]] = []
        self._seq = 0  # keeps equal due times in push order

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due_ms: int, item: T) -> None:
        heapq.heappush(self._heap, (due_ms, self._seq, item))
        self._seq += 1

    def pop_due(self, now_ms: int) -> list[T]:
        out: list[T] = []
        heap = self._heap
        while heap and heap[0][0] <= now_ms:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_deadline_ms(self) -> int | None:
        return self._heap[0][0] if self._heap else None
