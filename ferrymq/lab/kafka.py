"""The lab's Kafka-protocol clients, on aiokafka (a real third-party client): topic creation, a
producer that keeps the ledger (acks=all; idempotence on request), and a consumer-group member
whose receipts land in a series.

A record's value is the lab's body (``ferrymq.lab.body``); its key is chosen by the driver (per-key
ordering is what partitions give). A produce counts as confirmed when aiokafka's future resolves:
the broker has acknowledged it with the requested acks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from ferrymq.lab import body
from ferrymq.lab.recorder import Series

POLL_MS = 200


async def create_topic(bootstrap: str, name: str, partitions: int = 1,
                       configs: dict[str, str] | None = None) -> None:
    """CreateTopics; an existing topic is fine."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        await admin.close()


class Producer:
    """Produces the lab's bodies, ``window`` unacknowledged at most, recording sends, confirms and
    failures in the series' ledger."""

    def __init__(self, series: Series, bootstrap: str, topic: str, size: int = 128, window: int = 200,
                 key: Callable[[int], bytes | None] | None = None, idempotent: bool = False,
                 linger_ms: int = 1) -> None:
        self.series, self.bootstrap, self.topic, self.size = series, bootstrap, topic, size
        self.key, self.idempotent, self.linger_ms = key, idempotent, linger_ms
        self.window = asyncio.Semaphore(window)
        self.pending: set[asyncio.Future[Any]] = set()
        self.client: Any = None

    async def open(self) -> Producer:
        from aiokafka import AIOKafkaProducer

        self.client = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all",
                                       enable_idempotence=self.idempotent, linger_ms=self.linger_ms,
                                       request_timeout_ms=10_000, retry_backoff_ms=200)
        await self.client.start()
        return self

    async def send(self) -> bool:
        """One record; False when the window is full."""
        if self.window.locked():
            return False
        await self.window.acquire()
        msg_id = self.series.next_id()
        value = self.value(msg_id)
        self.series.sent()
        try:
            fut = await self.client.send(self.topic, value, key=self.key(msg_id) if self.key else None)
        except Exception:
            self.series.count("publish_failed")
            self.window.release()
            return True
        self.pending.add(fut)
        fut.add_done_callback(lambda f, i=msg_id: self._done(f, i))
        return True

    def value(self, msg_id: int) -> bytes:
        """The record's value (a driver with a payload of its own overrides it, as amqp's message)."""
        return body.encode(msg_id, self.series.now_ns(), self.size)

    def _done(self, fut: asyncio.Future[Any], msg_id: int) -> None:
        self.pending.discard(fut)
        self.window.release()
        if fut.cancelled() or fut.exception() is not None:
            self.series.count("publish_failed")
        else:
            self.series.confirmed(msg_id)

    async def close(self, timeout_s: float = 30.0) -> None:
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=timeout_s)
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.stop()


class GroupMember:
    """One consumer of a group (``group=None``: no group, reading assigned partitions from the
    start). Receipts go to ``series``; ``work_ms`` of processing per record; offsets committed
    after processing (at-least-once) unless ``commit='before'``."""

    def __init__(self, series: Series, bootstrap: str, topic: str, group: str | None, name: str = "",
                 work_ms: float = 0.0, commit: str = "after", offset_reset: str = "earliest",
                 on_assign: Callable[[str, set[Any]], None] | None = None) -> None:
        self.series, self.bootstrap, self.topic, self.group = series, bootstrap, topic, group
        self.name, self.work_ms, self.commit, self.offset_reset = name, work_ms, commit, offset_reset
        self.on_assign = on_assign
        self.client: Any = None
        self.task: asyncio.Task[None] | None = None
        self.received = 0

    async def start(self) -> GroupMember:
        from aiokafka import AIOKafkaConsumer

        self.client = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group,
                                       auto_offset_reset=self.offset_reset, enable_auto_commit=False,
                                       session_timeout_ms=6000, heartbeat_interval_ms=500,
                                       max_poll_interval_ms=30_000)
        self.client.subscribe([self.topic], listener=_listener(self) if self.group else None)
        await self.client.start()
        self.task = asyncio.create_task(self._loop())
        return self

    async def _loop(self) -> None:
        while True:
            batches = await self.client.getmany(timeout_ms=POLL_MS)
            records = [r for recs in batches.values() for r in recs]
            if not records:
                continue
            if self.commit == "before" and self.group:
                await self.client.commit()
            for r in records:
                ids = body.decode(r.value)
                if ids is not None:
                    if self.work_ms:
                        await asyncio.sleep(self.work_ms / 1000.0)
                    self.series.received(ids[0], ids[1])
                    self.received += 1
            if self.commit == "after" and self.group:
                with contextlib.suppress(Exception):  # a rebalance in between: redelivered, counted
                    await self.client.commit()

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.stop()


def _listener(member: GroupMember) -> Any:
    from aiokafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: set[Any]) -> None:
            if member.on_assign is not None:
                member.on_assign("revoked", revoked)

        async def on_partitions_assigned(self, assigned: set[Any]) -> None:
            if member.on_assign is not None:
                member.on_assign("assigned", assigned)

    return Listener()
