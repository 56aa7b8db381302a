"""What several drivers share: declaring and removing a run's queues over aio-pika, waiting until
the consumers have seen everything confirmed, and a series' phase with its depth sampler."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from ferrymq.lab import amqp
from ferrymq.lab.recorder import Series

SETTLE_S = 15.0  # after the load: how long consumers get to take what was confirmed


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


async def settle(series: Series, timeout_s: float = SETTLE_S) -> bool:
    """Wait until every confirmed message has been received at least once (True), or time out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        b = series.ledger.books()
        if b["lost"] == 0:
            return True
        await asyncio.sleep(0.1)
    return False


@contextlib.asynccontextmanager
async def sampling(series: Series, url: str, queues: list[str]) -> AsyncIterator[None]:
    """Sample the queues' depth into the series while the block runs."""
    stop = asyncio.Event()
    task = asyncio.create_task(amqp.sample_depth(series, url, queues, stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
