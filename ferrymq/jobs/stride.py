"""Weighted fair choice among queues that have work: stride scheduling.

Each queue advances its pass by ``STRIDE_BASE / weight`` when picked; the non-empty queue with
the lowest pass goes next. Over any stretch where queues stay busy, picks split in proportion
to weights (100 : 50 : 10), and a queue with weight 1 still gets its turn: no starvation. A
queue that was idle rejoins at the current pass, so it cannot bank turns while empty.
"""

from __future__ import annotations

from collections.abc import Mapping, Sized

STRIDE_BASE = 1 << 20


class StridePicker:
    __slots__ = ("_only", "_pass", "_stride")

    def __init__(self, weights: Mapping[str, int]) -> None:
        if not weights or any(w <= 0 for w in weights.values()):
            raise ValueError(f"queue weights must be positive: {dict(weights)}")
        self._stride = {name: STRIDE_BASE / weight for name, weight in weights.items()}
        self._pass = dict.fromkeys(weights, 0.0)
        self._only = next(iter(weights)) if len(weights) == 1 else None

    def pick(self, buffers: Mapping[str, Sized]) -> str | None:
        """The queue to take the next job from, or None when all are empty."""
        if self._only is not None:
            return self._only if buffers[self._only] else None
        best, best_pass = None, 0.0
        passes = self._pass
        for name, buffer in buffers.items():
            if buffer and (best is None or passes[name] < best_pass):
                best, best_pass = name, passes[name]
        if best is None:
            return None
        floor = best_pass
        for name, buffer in buffers.items():  # idle queues rejoin at the current pass
            if not buffer and passes[name] < floor:
                passes[name] = floor
        passes[best] = best_pass + self._stride[best]
        return best
