"""The only source of time and randomness. The core takes a Clock; tests take a ManualClock."""

from __future__ import annotations

import random
import time

from ferrymq.core.clock import Clock

__all__ = ["Clock", "ManualClock", "Rng", "SystemClock"]


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000

    def monotonic_us(self) -> int:
        return time.monotonic_ns() // 1_000


class ManualClock:
    """A clock that moves only when told: tests fast-forward TTLs and timeouts with it."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._wall_ms = start_ms
        self._mono_ms = 1_000_000  # never 0: 0 means 'no deadline' in the core

    def now_ms(self) -> int:
        return self._wall_ms

    def monotonic_ms(self) -> int:
        return self._mono_ms

    def monotonic_us(self) -> int:
        return self._mono_ms * 1_000

    def advance(self, ms: int) -> None:
        assert ms >= 0, "time never goes back"
        self._wall_ms += ms
        self._mono_ms += ms


class Rng(random.Random):
    """Seeded randomness; a failing run prints its seed so it replays."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed_value = seed if seed is not None else random.SystemRandom().randrange(2**32)
        super().__init__(self.seed_value)
