"""The lab's AMQP clients, on aio-pika (a real third-party client, the one many users run): a
confirming producer that keeps the ledger, an in-process consumer, and the queue-depth probe.

Connections are robust (aio-pika reconnects after a broker restart), so a kill -9 shows up in the
report as publishes that failed or were never confirmed and as time to recover, not as a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ferrymq.lab import body
from ferrymq.lab.recorder import Series

RECONNECT_S = 0.5


async def connect(url: str) -> Any:
    import aio_pika

    return await aio_pika.connect_robust(url, reconnect_interval=RECONNECT_S)


class Producer:
    """Publishes the lab's bodies with confirms (``window`` outstanding at most), recording each
    send, confirm and failure in the series' ledger."""

    def __init__(self, series: Series, url: str, routing_key: str, exchange: str = "", size: int = 128,
                 persistent: bool = True, window: int = 100,
                 headers: Callable[[int], dict[str, Any] | None] | None = None,
                 expiration_ms: Callable[[int], int | None] | None = None) -> None:
        self.series, self.url, self.routing_key, self.exchange_name = series, url, routing_key, exchange
        self.size, self.persistent = size, persistent
        self.headers, self.expiration_ms = headers, expiration_ms
        self.window = asyncio.Semaphore(window)
        self.pending: set[asyncio.Task[None]] = set()
        self.conn: Any = None
        self.exchange: Any = None

    async def open(self) -> Producer:
        self.conn = await connect(self.url)
        channel = await self.conn.channel(publisher_confirms=True)
        self.exchange = (await channel.get_exchange(self.exchange_name, ensure=False)
                         if self.exchange_name else channel.default_exchange)
        return self

    async def send(self) -> bool:
        """One publish; False when the confirm window is full (the caller's step ends)."""
        if self.window.locked():
            return False
        await self.window.acquire()
        msg_id = self.series.next_id()
        task = asyncio.create_task(self._publish(msg_id))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return True

    def message(self, msg_id: int) -> Any:
        import aio_pika

        ttl = self.expiration_ms(msg_id) if self.expiration_ms else None
        return aio_pika.Message(
            body.encode(msg_id, self.series.now_ns(), self.size),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if self.persistent else None,
            headers=self.headers(msg_id) if self.headers else None,
            expiration=ttl / 1000.0 if ttl is not None else None)

    async def _publish(self, msg_id: int) -> None:
        from pamqp.commands import Basic

        try:
            self.series.sent()
            result = await self.exchange.publish(self.message(msg_id), self.routing_key, timeout=30)
            if isinstance(result, Basic.Ack):
                self.series.confirmed(msg_id)
            else:
                self.series.count("publish_failed")
        except Exception:  # a nack, a closed connection, a timeout: not confirmed
            self.series.count("publish_failed")
        finally:
            self.window.release()

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for every outstanding confirm (or its failure)."""
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout_s)

    async def close(self) -> None:
        await self.drain()
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()


async def depth(channel: Any, queue: str) -> int:
    """Ready messages, as any AMQP broker reports them (a passive declare)."""
    q = await channel.declare_queue(queue, passive=True)
    return int(q.declaration_result.message_count)


async def sample_depth(series: Series, url: str, queues: list[str], stop: asyncio.Event,
                       every_s: float = 0.25) -> None:
    """The depth gauge of each queue (``depth`` for the first, ``depth:<name>`` for the rest). A
    plain connection, not a robust one: aio-pika's robust channel answers a repeated passive declare
    from its cache. After a failure (a broker restart), it reconnects on the next tick."""
    import aio_pika

    conn: Any = None
    while not stop.is_set():
        try:
            if conn is None or conn.is_closed:
                conn = await aio_pika.connect(url, timeout=2)
            channel = await conn.channel()
            for i, q in enumerate(queues):
                series.gauge("depth" if i == 0 else f"depth:{q}", await depth(channel, q))
            await channel.close()
        except Exception:
            conn = None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
    if conn is not None:
        with contextlib.suppress(Exception):
            await conn.close()
