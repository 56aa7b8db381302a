"""When each message is *meant* to be sent: steady (fixed rate) and bursty (on/off) schedules.

A paced producer stamps every message with its intended send time, not the time it was
written, so a broker that stalls the publisher shows up as latency instead of silently lowering
the offered load (coordinated omission).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Pacer:
    """Per-producer schedule. ``rate`` msgs/s while on (0 = as fast as the broker takes them);
    ``on_s``/``off_s`` > 0 make it bursty: on for on_s, silent for off_s, repeated."""

    rate: float = 0.0
    on_s: float = 0.0
    off_s: float = 0.0

    @property
    def paced(self) -> bool:
        return self.rate > 0

    @property
    def bursty(self) -> bool:
        return self.on_s > 0 and self.off_s > 0

    @property
    def per_burst(self) -> int:
        return max(1, math.ceil(self.rate * self.on_s))

    @property
    def period_ns(self) -> int:
        return int((self.on_s + self.off_s) * 1e9)

    def due(self, elapsed_ns: int) -> int:
        """How many messages are due by ``elapsed_ns`` after the start (message 0 at 0)."""
        if elapsed_ns < 0:
            return 0
        if not self.bursty:
            return int(elapsed_ns * self.rate / 1e9) + 1
        k, rem = divmod(elapsed_ns, self.period_ns)
        return k * self.per_burst + min(self.per_burst, int(rem * self.rate / 1e9) + 1)

    def intended_ns(self, i: int) -> int:
        """Intended send time of message i, ns after the start."""
        if not self.bursty:
            return int(i * 1e9 / self.rate)
        k, j = divmod(i, self.per_burst)
        return k * self.period_ns + int(j * 1e9 / self.rate)

    def is_on(self, elapsed_ns: int) -> bool:
        """Unpaced bursty mode: inside an on phase?"""
        return not self.bursty or elapsed_ns % self.period_ns < self.on_s * 1e9

    def next_on_ns(self, elapsed_ns: int) -> int:
        """Start of the next on phase (elapsed ns)."""
        return (elapsed_ns // self.period_ns + 1) * self.period_ns
