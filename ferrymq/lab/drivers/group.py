"""Kafka consumer-group members as processes of their own (``ferrymq.lab.kafka_worker``), so faults
can kill -9 them like the AMQP workers; and the wait after the load for a group whose losses, if
any, are the scenario's point (at-most-once never reaches "every confirmed record received")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ferrymq.lab.context import LabContext
from ferrymq.lab.kafka_worker import ASSIGNED
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import DEDUPED, PROCESSED, REDELIVERED, Worker

OnAssign = Callable[[str, int, int], None]  # (member, partition bit mask, assignments seen)


async def kafka_worker(ctx: LabContext, series: Series, topic: str, group: str,
                       options: tuple[str, ...] = (), on_assign: OnAssign | None = None,
                       name: str = "") -> Worker:
    """A group member whose receipts land in ``series``; faults address it as consumer N."""
    wname = name or f"c{len(ctx.workers)}"

    def on_record(kind: int, a: int, b: int) -> None:
        if kind in (PROCESSED, REDELIVERED):
            series.received(a, b, kind == REDELIVERED)
        elif kind == DEDUPED:
            series.count("deduplicated")
        elif kind == ASSIGNED and on_assign is not None:
            on_assign(wname, a, b)

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
