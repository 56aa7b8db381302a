"""The clock protocol the core depends on; ferrymq.clock implements it (the core reads no wall clock)."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (what RabbitMQ puts in x-death time, in seconds)."""
        ...

    def monotonic_ms(self) -> int:
        """Milliseconds on a clock that never goes back; deadlines are measured on it."""
        ...

    def monotonic_us(self) -> int:
        """Microseconds on the same clock: short durations (an fsync) are measured on it."""
        ...
