"""What several drivers share: declaring and removing a run's queues over aio-pika, waiting until
the consumers have seen everything confirmed, and a series' phase with its depth sampler."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from ferrymq.lab import amqp
from ferrymq.lab.recorder import CONFIRMED_BIT, Series

SETTLE_S = 60.0  # after the load: how long consumers get, at most, to take what was confirmed
# ... and how long without a single receipt before it gives up: longer than a broker restart on a
# loaded machine (a whole process start) and than a rebalance after it
STALL_S = 15.0


async def declare_queue(url: str, name: str, arguments: dict[str, Any] | None = None,
                        durable: bool = True) -> None:
    conn = await amqp.connect(url)
    try:
        channel = await conn.channel()
        await channel.declare_queue(name, durable=durable, arguments=arguments)
    finally:
        await conn.close()


async def delete_queues(url: str, names: list[str]) -> None:
    with contextlib.suppress(Exception):
        conn = await amqp.connect(url)
        try:
            for name in names:
                channel = await conn.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(name)
        finally:
            await conn.close()


async def settle(series: Series, timeout_s: float = SETTLE_S, stall_s: float = STALL_S) -> bool:
    """Wait until every confirmed message has been received at least once (True), or until the
    consumers stall (``stall_s`` without a receipt) or ``timeout_s`` passes (False)."""
    deadline = time.monotonic() + timeout_s
    last, last_change = series.totals["received"], time.monotonic()
    while time.monotonic() < deadline:
        if series.ledger.books()["lost"] == 0:
            return True
        if series.totals["received"] != last:
            last, last_change = series.totals["received"], time.monotonic()
        elif time.monotonic() - last_change > stall_s:
            return False
        await asyncio.sleep(0.1)
    return False


async def drain(series: Series, url: str, queue: str, idle_s: float = 1.0) -> int:
    """Take what is still in ``queue`` after the run (the workers are stopped) as fast as it comes,
    so the books tell a backlog (``drained``) from a loss. Returns how many were drained."""
    import aio_pika

    from ferrymq.lab import body

    taken = 0
    conn = await aio_pika.connect(url)
    try:
        channel = await conn.channel()
        await channel.set_qos(prefetch_count=500)
        q = await channel.declare_queue(queue, passive=True)
        async with q.iterator(timeout=idle_s) as it:
            with contextlib.suppress(TimeoutError):
                async for msg in it:
                    ids = body.decode(msg.body)
                    if ids is not None:
                        series.ledger.receive(ids[0])
                        taken += 1
                    await msg.ack()
    except Exception:  # a queue that is gone or a broker that is down: nothing to drain
        pass
    finally:
        await conn.close()
    series.count("drained", taken)
    return taken


@contextlib.asynccontextmanager
async def in_background(sampler: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    """Run ``sampler(stop)`` while the block runs; stop it and wait for it after."""
    stop = asyncio.Event()
    task = asyncio.create_task(sampler(stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task


def sampling(series: Series, url: str, queues: list[str]) -> contextlib.AbstractAsyncContextManager[None]:
    """Sample the queues' depth into the series while the block runs."""
    return in_background(lambda stop: amqp.sample_depth(series, url, queues, stop))


def lost_ids(series: Series, most: int = 20) -> list[int]:
    """The first confirmed ids never received: where to look when the books show a loss."""
    marks = series.ledger.marks
    return [i for i in range(series.ledger.sent) if marks[i] == CONFIRMED_BIT][:most]
