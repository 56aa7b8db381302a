"""Offering a rate: how many messages should be out by now, sent in small steps with an await in
between, so producers, consumers and the fault player share one event loop fairly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

STEP_S = 0.005
MAX_STEP = 200  # sends per step at most: a stall is not followed by an unbounded burst


async def paced(rate: float, seconds: float, send: Callable[[], Awaitable[bool]],
                stop: asyncio.Event | None = None) -> int:
    """Call ``send`` ``rate`` times a second (0: as fast as it goes) for ``seconds``; ``send``
    returning False (no room: a window is full) ends the step. Returns how many were sent."""
    t0 = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - t0) < seconds and not (stop and stop.is_set()):
        due = MAX_STEP if rate <= 0 else min(MAX_STEP, int(rate * elapsed) - sent)
        for _ in range(max(0, due)):
            if not await send():
                break
            sent += 1
        await asyncio.sleep(STEP_S if rate > 0 or due <= 0 else 0)
    return sent
