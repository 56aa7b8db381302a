"""Order processing, the standard workload run in both models: orders keyed by customer, a pool of
consumers processing them, one consumer lost half-way, then an attempt to read everything again.

Queue mode (AMQP): one durable queue, competing worker processes with prefetch; a worker killed
-9 hands its unacked orders back (redelivered), and nothing keeps a customer's orders in order
across consumers. Log mode (Kafka): a topic partitioned by customer, a consumer group; per-key
order holds (one partition, one reader), a member stopped makes the whole group pause for a
rebalance, and a fresh group can replay the topic from offset 0. Ordering is checked on the
consumer side: for each customer, order ids must arrive increasing."""

from __future__ import annotations

import asyncio
import time
from array import array
from dataclasses import dataclass
from functools import partial
from typing import Any

from ferrymq.lab import amqp, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.drivers.members import MemberActor, stop_all
from ferrymq.lab.drivers.watch import Gaps, KeyOrder, Watched, lag_gauge
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Event, Series

MODES = ("amqp", "kafka")
REPLAY_TIMEOUT_S = 30.0
ASSIGN_TIMEOUT_S = 20.0


@dataclass
class Params:
    rate: float = 400.0  # orders offered per second
    size: int = 256
    partitions: int = 8  # log mode: the topic's partitions (queue mode has one queue)
    consumers: int = 4
    work_ms: float = 5.0  # processing time per order
    keys: int = 50  # customers
    prefetch: int = 10  # queue mode

    def check(self) -> None:
        if self.rate <= 0 or self.consumers < 1 or self.partitions < 1 or self.keys < 1:
            raise ValueError("rate must be > 0; consumers, partitions and keys >= 1")
        if self.prefetch < 1 or self.size < 20:
            raise ValueError("prefetch must be >= 1 and size >= 20 bytes")


class Keys:
    """The customer of each order id, drawn from the run's seeded randomness in id order."""

    def __init__(self, ctx: LabContext, count: int) -> None:
        self.rng, self.count, self.table = ctx.rng, count, array("H")

    def __call__(self, msg_id: int) -> int:
        while len(self.table) <= msg_id:
            self.table.append(self.rng.randrange(self.count))
        return self.table[msg_id]


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("order-processing")
    keys = Keys(ctx, p.keys)
    series = ctx.series("orders")
    order, gaps = KeyOrder(keys), Gaps()
    watched = Watched(series, order, gaps).as_series()
    if ctx.target.mode == "kafka":
        await _log_mode(ctx, p, series, watched, keys)
    else:
        await _queue_mode(ctx, p, series, watched, keys)
    series.figure("ordering_violations", order.violations)
    series.figure("keys_out_of_order", len(order.keys_violated))
    series.figure("longest_pause_s", round(gaps.longest, 3))
    series.end()


async def _queue_mode(ctx: LabContext, p: Params, series: Series, watched: Series, keys: Keys) -> None:
    url, queue = ctx.target.amqp_url, ctx.name("orders")
    await common.declare_queue(url, queue)
    for _ in range(p.consumers):
        await ctx.worker(watched, queue, prefetch=p.prefetch, work_ms=p.work_ms)
    producer = await amqp.Producer(series, url, queue, size=p.size,
                                   headers=lambda i: {"customer": keys(i)}).open()
    series.begin()
    async with common.sampling(series, url, [queue]), lag_gauge(series), ctx.faults_on(series):
        await paced(p.rate, ctx.duration, producer.send)
        await producer.close()
        series.figure("settled", await common.settle(series))
    await ctx.stop_workers()
    conn = await amqp.connect(url)
    try:  # what is left to read again: acked orders are gone from a queue
        series.figure("replayable_messages", await amqp.depth(await conn.channel(), queue))
    finally:
        await conn.close()
    series.figure("replay_s", None)
    await common.delete_queues(url, [queue])


async def _log_mode(ctx: LabContext, p: Params, series: Series, watched: Series, keys: Keys) -> None:
    boot, topic, group = ctx.target.kafka_bootstrap, ctx.name("orders"), ctx.name("processors")
    await kafka.create_topic(boot, topic, p.partitions)
    moves: list[tuple[float, str]] = []

    def seen(kind: str, parts: set[Any]) -> None:
        moves.append((series.t(), kind))

    members = [MemberActor(partial(kafka.GroupMember, watched, boot, topic, group, f"m{i}", p.work_ms,
                                   on_assign=seen))
               for i in range(p.consumers)]
    for m in members:
        await m.start()
    await _assigned(members, p.partitions)
    ctx.target.actors.consumers.extend(members)
    producer = await kafka.Producer(series, boot, topic, size=p.size, key=lambda i: b"c%d" % keys(i)).open()
    series.begin()
    moves.clear()
    try:
        async with lag_gauge(series), ctx.faults_on(series):
            await paced(p.rate, ctx.duration, producer.send)
            await producer.close()
            series.figure("settled", await common.settle(series))
    finally:
        ctx.target.actors.consumers.clear()
        await stop_all(members)
    windows = rebalance_windows(moves)
    for t0, t1 in windows:
        series.events.append(Event(t0, "note", f"rebalance {t1 - t0:.2f} s", t1))
    series.figure("rebalances", len(windows))
    series.figure("rebalance_s", round(sum(t1 - t0 for t0, t1 in windows), 3))
    await _replay(series, boot, topic)


def rebalance_windows(moves: list[tuple[float, str]], gap_s: float = 1.0) -> list[tuple[float, float]]:
    """Each rebalance as (first revocation, last assignment): the members' callbacks of one
    rebalance come close together; a quiet second between callbacks starts the next one."""
    windows: list[list[float]] = []
    for t, _kind in sorted(moves):
        if windows and t - windows[-1][1] <= gap_s:
            windows[-1][1] = t
        else:
            windows.append([t, t])
    return [(round(a, 3), round(b, 3)) for a, b in windows]


async def _assigned(members: list[MemberActor], partitions: int) -> None:
    """Wait until the group has shared out every partition (the load starts on a settled group)."""
    deadline = time.monotonic() + ASSIGN_TIMEOUT_S
    while time.monotonic() < deadline:
        owned = sum(len(m.member.client.assignment()) for m in members if m.member and m.member.client)
        if owned >= partitions:
            return
        await asyncio.sleep(0.1)


async def _replay(series: Series, boot: str, topic: str) -> None:
    """A fresh consumer group reads the topic again from offset 0: everything is still there."""
    scratch = Series("replay", series.target)
    member = await kafka.GroupMember(scratch, boot, topic, f"{topic}-replay").start()
    t0 = time.monotonic()
    want = series.totals["confirmed"]
    try:
        while time.monotonic() - t0 < REPLAY_TIMEOUT_S and member.received < want:
            await asyncio.sleep(0.05)
    finally:
        await member.stop()
    took = time.monotonic() - t0
    series.figure("replayable_messages", member.received)
    series.figure("replay_s", round(took, 3))
    series.figure("replay_per_s", round(member.received / took, 1) if took else 0.0)


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    p = run["params"]
    for s in run["series"]:
        f = s["figures"]
        log = "log mode" in s["name"]
        v = f.get("ordering_violations", 0)
        out.append(f"{s['name']}: {n(p['consumers'])} consumers processed {n(s['rates']['out_per_s'])} "
                   f"orders/s (offered {n(p['rate'])}/s), p99 {n(s['latency_ms']['p99'])} ms; "
                   f"{n(v)} orders arrived after a later order of the same customer "
                   f"({n(f.get('keys_out_of_order', 0))} of {n(p['keys'])} customers affected): per-customer "
                   f"order {'held' if v == 0 else 'was not kept'}"
                   + (" (one partition per customer, one reader per partition)." if log else
                      " (competing consumers with prefetch take a customer's orders in parallel)."))
        out += _log_sentences(s) if log else _queue_sentences(s)
    return out


def _log_sentences(s: dict[str, Any]) -> list[str]:
    f, b = s["figures"], s["books"]
    cause = "losing a member cost" if s["faults"] else "with no fault, the group had"
    return [f"{s['name']}: {cause} {n(f.get('rebalances', 0))} rebalance(s) "
            f"({n(f.get('rebalance_s'))} s from revocation to assignment); the group's longest pause "
            f"without any receipt was {n(f.get('longest_pause_s'))} s, and {n(b['duplicates'])} records "
            "were processed again (read past the last commit).",
            f"{s['name']}: a fresh consumer group re-read {n(f.get('replayable_messages'))} of "
            f"{n(b['confirmed'])} orders from offset 0 in {n(f.get('replay_s'))} s: the log keeps what was "
            "read."]


def _queue_sentences(s: dict[str, Any]) -> list[str]:
    f, t = s["figures"], s["totals"]
    lead = "the killed consumer's unacked orders came back" if s["faults"] else "with no fault"
    return [f"{s['name']}: {lead}: {n(t['redelivered'])} redeliveries; the consumers carried on "
            f"(longest pause without any receipt {n(f.get('longest_pause_s'))} s).",
            f"{s['name']}: {n(f.get('replayable_messages'))} orders were left to replay: an acked message is "
            "gone from a queue."]
