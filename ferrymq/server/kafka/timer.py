"""The timer of a coordinator whose timers are data (the group and transaction coordinators): armed
at the core's next deadline, or at least every tick, and fired with the clock's monotonic time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ferrymq import limits
from ferrymq.core.clock import Clock


class DeadlineTimer:
    """``next_deadline()``: the core's next deadline (None: none); ``fire(now_ms)``: its tick."""

    def __init__(self, loop: asyncio.AbstractEventLoop, clock: Clock, next_deadline: Callable[[], int | None],
                 fire: Callable[[int], None], tick_ms: int = limits.KAFKA_GROUP_TICK_MS) -> None:
        self.loop, self.clock = loop, clock
        self.next_deadline, self.fire = next_deadline, fire
        self.tick_ms = tick_ms
        self._handle: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._arm()

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def rearm(self) -> None:
        """A new deadline may be sooner than the armed one (a no-op before start and after stop)."""
        if self._handle is not None:
            self._handle.cancel()
            self._arm()

    def _arm(self) -> None:
        delay = self.tick_ms / 1000
        deadline = self.next_deadline()
        if deadline is not None:
            delay = min(delay, max(0.0, (deadline - self.clock.monotonic_ms()) / 1000))
        self._handle = self.loop.call_later(delay, self._fired)

    def _fired(self) -> None:
        self.fire(self.clock.monotonic_ms())
        self._arm()
