"""Fan-out logs: one publisher, N subscribers that each want every message. Queue mode (AMQP): a
fanout exchange bound to N durable queues, one worker process on each — the broker stores N
copies. Log mode (Kafka): one topic read by N consumer groups — one stored copy, N offsets. One
subscriber is slow (``slow_ms`` per message): its lag grows while the others keep pace, in both
models. Each subscriber is a series of its own; the publisher's ledger is kept in all of them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ferrymq.lab import amqp, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.drivers.members import MemberActor, stop_all
from ferrymq.lab.drivers.watch import Tee, lag_gauge
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("amqp", "kafka")
DRAIN_S = 60.0  # after the load: at most this long for the slow subscriber to catch up


@dataclass
class Params:
    subscribers: int = 3  # the last one is the slow one
    rate: float = 200.0
    size: int = 256
    work_ms: float = 1.0  # per message, the ordinary subscribers
    slow_ms: float = 6.0  # per message, the slow subscriber
    prefetch: int = 50  # queue mode
    partitions: int = 3  # log mode

    def check(self) -> None:
        if self.subscribers < 2 or self.rate <= 0 or self.partitions < 1 or self.prefetch < 1:
            raise ValueError("subscribers >= 2, rate > 0, partitions and prefetch >= 1")


def _names(p: Params) -> list[str]:
    return [f"sub{i + 1}" for i in range(p.subscribers - 1)] + ["slow sub"]


def disk_bytes(data_dir: Path | None) -> int | None:
    """Bytes in the broker's data directory (FerryMQ the lab started), None when unknown."""
    if data_dir is None or not data_dir.exists():
        return None
    return sum(f.stat().st_size for f in data_dir.rglob("*") if f.is_file())


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("fanout")
    subs = [ctx.series(name) for name in _names(p)]
    works = [p.work_ms] * (p.subscribers - 1) + [p.slow_ms]
    disk = DiskWatch(ctx.target.data_dir)
    async with disk:
        if ctx.target.mode == "kafka":
            stored = await _log_mode(ctx, p, subs, works)
        else:
            stored = await _queue_mode(ctx, p, subs, works)
    for s in subs:
        s.figure("stored_copies", stored)
        s.figure("disk_peak_bytes", disk.peak)
        s.figure("disk_end_bytes", disk.last)


class DiskWatch:
    """The growth of the broker's data directory over the run, sampled: its peak (what the fan-out
    held at worst) and its growth at the end (what it keeps once every subscriber has caught up).
    None for a broker the lab did not start (no data directory to look at)."""

    def __init__(self, data_dir: Path | None, every_s: float = 0.5) -> None:
        self.data_dir, self.every_s = data_dir, every_s
        self.base = disk_bytes(data_dir)
        self.peak: int | None = None
        self.last: int | None = None
        self.task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        if self.base is None:
            return
        size = await asyncio.to_thread(disk_bytes, self.data_dir)
        if size is not None:
            self.last = size - self.base
            self.peak = max(self.peak or 0, self.last)

    async def _loop(self) -> None:
        while True:
            await self._sample()
            await asyncio.sleep(self.every_s)

    async def __aenter__(self) -> DiskWatch:
        self.task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self._sample()


async def _load(ctx: LabContext, p: Params, subs: list[Series], producer: Any) -> None:
    """Offer the rate for the run's length, then let every subscriber drain (each series ends when
    its subscriber has everything)."""
    for s in subs:
        s.begin()
    t0 = time.monotonic()
    async with ctx.faults_on(subs[0]):
        await paced(p.rate, ctx.duration, producer.send)
        await producer.close()
    load_s = time.monotonic() - t0
    for s in subs:
        s.figure("during_load_per_s", round(s.totals["received"] / load_s, 1))
        s.figure("lag_at_load_end", max(0, s.totals["confirmed"] - s.totals["received"]))

    async def drain(s: Series) -> None:
        s.figure("drained", await common.settle(s, DRAIN_S))
        s.figure("drain_s", round(time.monotonic() - t0 - load_s, 3))
        s.end()

    await asyncio.gather(*(drain(s) for s in subs))


async def _queue_mode(ctx: LabContext, p: Params, subs: list[Series], works: list[float]) -> int:
    url, exchange = ctx.target.amqp_url, ctx.name("logs")
    queues = [ctx.name(f"logs-{i}") for i in range(len(subs))]
    conn = await amqp.connect(url)
    try:
        channel = await conn.channel()
        ex = await channel.declare_exchange(exchange, "fanout", durable=True)
        for q in queues:
            queue = await channel.declare_queue(q, durable=True)
            await queue.bind(ex)
        for s, q, w in zip(subs, queues, works, strict=True):
            await ctx.worker(s, q, prefetch=p.prefetch, work_ms=w)
        producer = await amqp.Producer(Tee(subs).as_series(), url, "", exchange=exchange, size=p.size).open()
        async with _gauges(ctx, subs, queues):
            await _load(ctx, p, subs, producer)
        await ctx.stop_workers()
        for q in queues:
            await channel.queue_delete(q)
        await channel.exchange_delete(exchange)
    finally:
        await conn.close()
    return subs[0].totals["confirmed"] * len(subs)


@contextlib.asynccontextmanager
async def _gauges(ctx: LabContext, subs: list[Series], queues: list[str] | None) -> AsyncIterator[None]:
    """Each subscriber's lag, and in queue mode the depth of its own queue, into its own series."""
    async with contextlib.AsyncExitStack() as stack:
        for i, s in enumerate(subs):
            await stack.enter_async_context(lag_gauge(s))
            if queues is not None:
                await stack.enter_async_context(common.sampling(s, ctx.target.amqp_url, [queues[i]]))
        yield


async def _log_mode(ctx: LabContext, p: Params, subs: list[Series], works: list[float]) -> int:
    boot, topic = ctx.target.kafka_bootstrap, ctx.name("logs")
    await kafka.create_topic(boot, topic, p.partitions)
    groups = [ctx.name(f"sub{i}") for i in range(len(subs))]
    members = [MemberActor(partial(kafka.GroupMember, s, boot, topic, g, g, w))
               for s, w, g in zip(subs, works, groups, strict=True)]
    for m in members:
        await m.start()
    await _assigned(members, p.partitions)
    ctx.target.actors.consumers.extend(members)
    producer = await kafka.Producer(Tee(subs).as_series(), boot, topic, size=p.size).open()
    try:
        async with _gauges(ctx, subs, None):
            await _load(ctx, p, subs, producer)
    finally:
        ctx.target.actors.consumers.clear()
        await stop_all(members)
    return subs[0].totals["confirmed"]


async def _assigned(members: list[MemberActor], partitions: int, timeout_s: float = 20.0) -> None:
    """Every group (one member each) owns all the partitions before the load starts."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(m.member and m.member.client and len(m.member.client.assignment()) >= partitions
               for m in members):
            return
        await asyncio.sleep(0.1)


def _peak(s: dict[str, Any], gauge: str) -> float:
    vals = [v for v in s["timeline"]["gauges"].get(gauge, []) if v is not None]
    return max(vals) if vals else 0


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    p = run["params"]
    for s in run["series"]:
        f = s["figures"]
        lag_end = f["lag_at_load_end"]
        out.append(f"{s['name']}: {n(f['during_load_per_s'])} messages/s processed while {n(p['rate'])}/s "
                   f"were published; lag peaked at {n(max(_peak(s, 'lag'), lag_end))} and was {n(lag_end)} "
                   f"when publishing stopped; caught up {n(f['drain_s'])} s later.")
    by_target: dict[str, dict[str, Any]] = {}
    for s in run["series"]:
        by_target.setdefault(s["target"], s)
    for target, s in by_target.items():
        f = s["figures"]
        log = "log mode" in target
        peak, end = f.get("disk_peak_bytes"), f.get("disk_end_bytes")
        out.append(f"{target}: {n(s['books']['confirmed'])} messages published, "
                   f"{n(f['stored_copies'])} stored copies ("
                   + ("one topic read by each group at its own offset" if log else
                      f"a queue per subscriber: {n(p['subscribers'])} copies of each message")
                   + (f"); the broker's data directory grew by {n(peak)} bytes at the peak and "
                      f"{n(end)} bytes were still held once every subscriber had caught up."
                      if peak is not None else ")."))
    return out
