"""Node failure: the broker is killed (-9) mid-run and restarted on the same data, or frozen
(SIGSTOP) and continued, while a producer with confirms and consumers with manual acks (queue
mode) or a consumer group committing offsets (log mode) keep going. What it shows: nothing the
broker confirmed is lost, how many messages come twice (the at-least-once price of the crash),
and how long publishing and consuming stop. Each fault of the plan gets a series of its own.

FerryMQ has no replication yet, so there is no leader to kill and no failover to report: the
node's own recovery from its disk is what is measured."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ferrymq.lab import faults as faults_mod
from ferrymq.lab import kafka
from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n
from ferrymq.lab.faults import FaultSpec
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("amqp", "kafka")
WATCH_S = 0.05  # how often the outage watcher looks at the counters
SETTLE_S = 60.0  # after the load: a consumer group rejoining a restarted broker can take a while
TAIL_S = 2.0  # load after a restart that ended past the load's planned end: recovery must show


async def load(rate: float, seconds: float, send: Callable[[], Awaitable[bool]],
               player: asyncio.Task[None]) -> None:
    """The offered load for ``seconds``, and on until ``TAIL_S`` after the fault played out, so a
    restart that takes longer than planned still has traffic to recover."""
    await paced(rate, seconds, send)
    if player.done():
        return
    stop = asyncio.Event()
    task = asyncio.create_task(paced(rate, 3600.0, send, stop))
    await asyncio.wait({player})
    await asyncio.sleep(TAIL_S)
    stop.set()
    await task


@dataclass
class Params:
    rate: float = 400.0  # messages offered per second
    workers: int = 2  # consumer processes (queue mode), group members (log mode)
    prefetch: int = 20  # queue mode
    work_ms: float = 1.0
    size: int = 256
    partitions: int = 3  # log mode

    def check(self) -> None:
        if self.rate <= 0 or self.workers < 1 or self.prefetch < 1 or self.partitions < 1:
            raise ValueError("rate must be > 0; workers, prefetch and partitions >= 1")


class Outage:
    """The longest stretch without a new confirm and without a new receipt, and when they ended,
    sampled from the series' counters (what a user sees: nothing moving)."""

    def __init__(self, series: Series, lag: bool) -> None:
        self.series, self.lag = series, lag
        self.gaps = {"confirmed": 0.0, "received": 0.0}
        self.stop = asyncio.Event()

    async def watch(self) -> None:
        last = {k: (self.series.totals[k], time.monotonic()) for k in self.gaps}
        while not self.stop.is_set():
            await asyncio.sleep(WATCH_S)
            now = time.monotonic()
            if self.lag:  # log mode: confirmed but not yet received, the lab's view of consumer lag
                t = self.series.totals
                self.series.gauge("lag", max(0, t["confirmed"] - t["received"]))
            for k, (count, since) in last.items():
                if self.series.totals[k] != count:
                    self.gaps[k] = max(self.gaps[k], now - since)
                    last[k] = (self.series.totals[k], now)

    def record(self) -> None:
        self.series.figure("publish_outage_s", round(self.gaps["confirmed"], 2))
        self.series.figure("consume_outage_s", round(self.gaps["received"], 2))


@contextlib.asynccontextmanager
async def one_fault(ctx: LabContext, series: Series, fault: FaultSpec | None,
                    seconds: float) -> AsyncIterator[asyncio.Task[None]]:
    """Play one fault of the plan (or none) on ``series``, with the outage watcher beside it."""
    outage = Outage(series, ctx.target.mode == "kafka")
    watcher = asyncio.create_task(outage.watch())
    plan = [fault] if fault is not None else []
    player = asyncio.create_task(faults_mod.play(plan, series, ctx.target.actors, seconds))
    try:
        yield player
        await player  # a restart still under way finishes before the next series needs the broker
    finally:
        outage.stop.set()
        for task in (player, watcher):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        outage.record()


async def restart_workers_after_restart(ctx: LabContext, series: Series) -> None:
    """A supervisor: the lab's workers hold one plain connection each, so after the broker came back
    they are restarted, as systemd or Kubernetes would restart a worker whose connection died."""
    seen = 0
    while True:
        restarts = [e for e in series.events if e.kind == "restart"]
        if len(restarts) > seen:
            seen = len(restarts)
            await asyncio.gather(*(w.restart() for w in ctx.workers))
        await asyncio.sleep(0.1)


async def queue_mode(ctx: LabContext, p: Params, fault: FaultSpec | None, seconds: float) -> None:
    queue = ctx.name(f"orders-{fault.action if fault else 'none'}")
    await common.declare_queue(ctx.target.amqp_url, queue)
    series = ctx.series(fault.text if fault else "no fault")
    for _ in range(p.workers):
        await ctx.worker(series, queue, prefetch=p.prefetch, work_ms=p.work_ms)
    producer = await Producer(series, ctx.target.amqp_url, queue, size=p.size).open()
    series.begin()
    supervisor = asyncio.create_task(restart_workers_after_restart(ctx, series))
    sampling = common.sampling(series, ctx.target.amqp_url, [queue])
    async with sampling, one_fault(ctx, series, fault, seconds) as player:
        await load(p.rate, seconds, producer.send, player)
        await producer.close()
        series.figure("settled", await common.settle(series, SETTLE_S))
    series.figure("lost_ids", common.lost_ids(series))
    supervisor.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await supervisor
    series.end()
    await ctx.stop_workers()
    await common.delete_queues(ctx.target.amqp_url, [queue])


async def log_mode(ctx: LabContext, p: Params, fault: FaultSpec | None, seconds: float) -> None:
    topic = ctx.name(f"orders-{fault.action if fault else 'none'}")
    await kafka.create_topic(ctx.target.kafka_bootstrap, topic, p.partitions)
    series = ctx.series(fault.text if fault else "no fault")
    group = ctx.name(f"group-{fault.action if fault else 'none'}")
    members = [await kafka.GroupMember(series, ctx.target.kafka_bootstrap, topic, group, f"m{i}",
                                       work_ms=p.work_ms).start() for i in range(p.workers)]
    producer = await kafka.Producer(series, ctx.target.kafka_bootstrap, topic, size=p.size,
                                    key=lambda i: str(i % 64).encode()).open()
    series.begin()
    async with one_fault(ctx, series, fault, seconds) as player:
        await load(p.rate, seconds, producer.send, player)
        await producer.close()
        series.figure("settled", await common.settle(series, SETTLE_S))
    series.figure("lost_ids", common.lost_ids(series))
    series.end()
    for m in members:
        await m.stop()


async def run(ctx: LabContext, p: Params) -> None:
    plan: list[FaultSpec | None] = list(ctx.faults) or [None]
    ctx.check_faults("node-failure")
    seconds = ctx.duration / len(plan)
    for fault in plan:
        if ctx.target.mode == "kafka":
            await log_mode(ctx, p, fault, seconds)
        else:
            await queue_mode(ctx, p, fault, seconds)


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        b, f = s["books"], s["figures"]
        verdict = "none lost" if b["lost"] == 0 else f"{n(b['lost'])} LOST"
        out.append(f"{s['name']}: of {n(b['confirmed'])} confirmed messages {verdict}, "
                   f"{n(b['duplicates'])} received twice; publishing stopped for at most "
                   f"{n(f.get('publish_outage_s'))} s and consuming for at most "
                   f"{n(f.get('consume_outage_s'))} s.")
    if run["series"]:
        out.append("FerryMQ has no replication yet: there is no leader to kill and no failover to "
                   "report; what is measured is one node's recovery from its own disk.")
    return out
