"""Kafka consumer-group members as processes of their own (``ferrymq.lab.kafka_worker``), so faults
can kill -9 them like the AMQP workers; and the wait after the load for a group whose losses, if
any, are the scenario's point (at-most-once never reaches "every confirmed record received")."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import DEDUPED, PROCESSED, REDELIVERED, Worker

OnRecord = Callable[[str, int, int, int], None]  # (member, kind, a, b): ASSIGNED and BATCH records


async def kafka_worker(ctx: LabContext, series: Series, topic: str, group: str,
                       options: tuple[str, ...] = (), on_other: OnRecord | None = None,
                       name: str = "") -> Worker:
    """A group member whose receipts land in ``series``; faults address it as consumer N."""
    wname = name or f"c{len(ctx.workers)}"

    def on_record(kind: int, a: int, b: int) -> None:
        if kind in (PROCESSED, REDELIVERED):
            series.received(a, b, kind == REDELIVERED)
        elif kind == DEDUPED:
            series.count("deduplicated")
        elif on_other is not None:
            on_other(wname, kind, a, b)

    args = ["--bootstrap", ctx.target.kafka_bootstrap, "--topic", topic, "--group", group, *options]
    w = Worker(wname, args, on_record, module="ferrymq.lab.kafka_worker")
    await w.start()
    ctx.workers.append(w)
    ctx.target.actors.consumers.append(w)
    return w


async def settle_quiet(series: Series, quiet_s: float, timeout_s: float = 30.0) -> bool:
    """Wait until every confirmed message was received (True), or no receipt came for ``quiet_s``
    (what was lost stays lost), or the timeout."""
    deadline = time.monotonic() + timeout_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        if series.ledger.books()["lost"] == 0:
            return True
        seen = series.totals["received"] + series.totals["deduplicated"]
        if seen != last:
            last, since = seen, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return False
        await asyncio.sleep(0.1)
    return False


async def _lag(admin: Any, probe: Any, topic: str, group: str) -> int:
    committed = await admin.list_consumer_group_offsets(group)
    tps = [tp for tp in probe.assignment() if tp.topic == topic]
    ends = await probe.end_offsets(tps)
    return sum(end - max(0, committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


async def _sample_lag(series: Series, bootstrap: str, topic: str, group: str, stop: asyncio.Event,
                      every_s: float) -> None:
    """The group's lag as the broker reports it: end offsets minus committed offsets."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await probe.start()
    try:
        probe.assign([TopicPartition(topic, p) for p in sorted(probe.partitions_for_topic(topic) or {0})])
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a broker restart: the next tick tries again
                series.gauge("lag", await _lag(admin, probe, topic, group))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
    finally:
        await probe.stop()
        await admin.close()


def sampling_lag(series: Series, bootstrap: str, topic: str, group: str,
                 every_s: float = 0.25) -> contextlib.AbstractAsyncContextManager[None]:
    """Sample the group's lag into the series while the block runs."""
    return common.in_background(lambda stop: _sample_lag(series, bootstrap, topic, group, stop, every_s))
