"""Prefetch sweep: one burst of messages drained by fast and slow consumers together (by default
three at 1 ms per message and one at 20 ms), once per prefetch count, one series each. What it
shows: with prefetch 1 every consumer waits a round trip between messages (idle time, measured by
the worker as the time it spends waiting for a delivery); a moderate prefetch removes the wait; a
large one lets the broker hand the slow consumer a hoard it then works through alone while the
fast ones sit idle, so the burst takes longer to drain.

The consumers are attached but stopped (SIGSTOP) while the burst is published, then resumed
together: the broker deals the burst out as it arrives, up to each one's prefetch, as it does to
consumers busy with earlier work when a burst comes in.

Per series: the drain's throughput (messages / time from the resume to the last receipt),
each consumer's share of the work and idle share of that time (the table "consumers", the figures
``max_share_pct`` and ``idle_fast_pct``); the last series also carries the table "sweep", one row
per prefetch: the chart of throughput against prefetch, in numbers.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import IDLE, PROCESSED, REDELIVERED

MODES = ("amqp",)
TAIL_S = 0.6  # after the last receipt: every worker reports its idle time once more (every 0.25 s)


@dataclass
class Params:
    prefetch: list[int] = field(default_factory=lambda: [1, 10, 50, 200, 1000])  # one variant each
    fast: int = 3
    fast_ms: float = 1.0
    slow: int = 1
    slow_ms: float = 20.0
    messages: int = 2000  # the burst, per variant (the short form sends short_messages)
    short_messages: int = 300
    size: int = 128

    def check(self) -> None:
        if not self.prefetch or min(self.prefetch) < 1:
            raise ValueError("prefetch: a list of prefetch counts, each >= 1")
        if self.fast < 0 or self.slow < 0 or self.fast + self.slow < 1:
            raise ValueError("fast and slow: consumer counts >= 0, at least one consumer in all")
        if self.messages < 1 or self.short_messages < 1:
            raise ValueError("messages and short_messages must be >= 1")


@dataclass
class Consumer:
    """One consumer's part: receipts, the last one's time, its idle samples (monotonic ns, idle ms)."""
    name: str
    work_ms: float
    processed: int = 0
    last_ns: int = 0
    idle: list[tuple[int, int]] = field(default_factory=list)

    def observer(self, series: Series) -> Any:
        def observe(kind: int, a: int, b: int) -> None:
            now = series.now_ns()
            if kind in (PROCESSED, REDELIVERED):
                self.processed += 1
                self.last_ns = now
            elif kind == IDLE:
                self.idle.append((now, a))
        return observe

    def idle_ms_at(self, t_ns: int) -> float:
        """Cumulative idle ms at ``t_ns``, interpolated between the worker's reports."""
        pts = self.idle
        if not pts:
            return 0.0
        for (t0, v0), (t1, v1) in itertools.pairwise(pts):
            if t0 <= t_ns <= t1:
                return v0 + (v1 - v0) * (t_ns - t0) / max(1, t1 - t0)
        return float(pts[0][1] if t_ns < pts[0][0] else pts[-1][1])

    def idle_pct(self, start_ns: int, end_ns: int) -> float:
        """Idle share of [its first report after ``start_ns``, ``end_ns``]: the first report after a
        SIGCONT already holds the stopped time (a wait that began before the stop), later ones do not."""
        after = [(t, v) for t, v in self.idle if t >= start_ns]
        if not after or end_ns <= after[0][0]:
            return 0.0
        t0, v0 = after[0]
        return round(min(100.0, 100.0 * (self.idle_ms_at(end_ns) - v0) / ((end_ns - t0) / 1e6)), 1)


async def _burst(series: Series, url: str, queue: str, count: int, size: int) -> None:
    producer = await Producer(series, url, queue, size=size).open()
    done, offered = asyncio.Event(), [0]

    async def send() -> bool:
        if offered[0] >= count:
            done.set()
            return False
        ok = await producer.send()
        offered[0] += ok
        return ok

    await paced(0, 3600.0, send, stop=done)
    await producer.close()


async def _variant(ctx: LabContext, p: Params, prefetch: int, count: int) -> dict[str, Any]:
    queue = ctx.name(f"sweep-{prefetch}")
    await common.declare_queue(ctx.target.amqp_url, queue)
    series = ctx.series(f"prefetch {prefetch}")
    kinds = [(f"slow{i + 1}" if p.slow > 1 else "slow", p.slow_ms) for i in range(p.slow)] + \
        [(f"fast{i + 1}", p.fast_ms) for i in range(p.fast)]
    consumers = [Consumer(name, ms) for name, ms in kinds]
    for c in consumers:
        await ctx.worker(series, queue, prefetch=prefetch, work_ms=c.work_ms, name=c.name,
                         observe=c.observer(series))
    series.begin()
    async with common.sampling(series, ctx.target.amqp_url, [queue]), ctx.faults_on(series):
        for w in ctx.workers:  # stopped: the broker deals the burst out up to each one's prefetch
            w.pause()
        await _burst(series, ctx.target.amqp_url, queue, count, p.size)
        resumed = series.now_ns()
        for w in ctx.workers:
            w.resume()
        series.event("note", "burst published: consumers resumed")  # in the JSON, not on the charts
        settled = await common.settle(series, max(common.SETTLE_S, ctx.duration))
        await asyncio.sleep(TAIL_S)
    row = _record(series, prefetch, consumers, p, settled, resumed)
    series.end()
    await ctx.stop_workers()
    await common.delete_queues(ctx.target.amqp_url, [queue])
    return row


def _record(series: Series, prefetch: int, consumers: list[Consumer], p: Params, settled: bool,
            start: int) -> dict[str, Any]:
    end = max(c.last_ns for c in consumers) or series.now_ns()  # the drain: resumed to the last receipt
    wall_ms = max(1.0, (end - start) / 1e6)
    total = max(1, sum(c.processed for c in consumers))
    rows: list[dict[str, Any]] = [{"consumer": c.name, "work_ms": c.work_ms, "processed": c.processed,
             "share_pct": round(100.0 * c.processed / total, 1),
             "idle_pct": c.idle_pct(start, end)}
            for c in consumers]
    series.table("consumers", rows)
    top = max(rows, key=lambda r: r["share_pct"])
    fast = [r["idle_pct"] for r in rows if r["consumer"].startswith("fast")] or [r["idle_pct"] for r in rows]
    slow = [r["share_pct"] for r in rows if r["consumer"].startswith("slow")]
    speed = [1.0 / max(c.work_ms, 0.001) for c in consumers]
    figures = {"prefetch": prefetch, "drain_s": round(wall_ms / 1000.0, 3),
               "throughput_per_s": round(total / (wall_ms / 1000.0), 1),
               "max_share_pct": top["share_pct"], "max_share_consumer": top["consumer"],
               "slow_share_pct": sum(slow) if slow else None,
               "slow_fair_share_pct": round(100.0 * sum(speed[:p.slow]) / sum(speed), 1) if p.slow else None,
               "idle_fast_pct": round(sum(fast) / len(fast), 1), "settled": settled}
    for k, v in figures.items():
        series.figure(k, v)
    return {k: figures[k] for k in ("prefetch", "throughput_per_s", "drain_s", "max_share_pct",
                                    "slow_share_pct", "idle_fast_pct")}


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("prefetch-sweep")
    count = p.short_messages if ctx.short else p.messages
    sweep = [await _variant(ctx, p, prefetch, count) for prefetch in p.prefetch]
    ctx.series_list[-1].table("sweep", sweep)


def _sentence(s: dict[str, Any]) -> str:
    f = s["figures"]
    slow = (f"; the slow consumer did {n(f['slow_share_pct'])} % of the work (its fair share by speed: "
            f"{n(f['slow_fair_share_pct'])} %)" if f.get("slow_share_pct") is not None else "")
    return (f"{s['name']}: {n(s['books']['confirmed'])} messages drained in {n(f['drain_s'])} s "
            f"({n(f['throughput_per_s'])} msgs/s); the fast consumers were idle {n(f['idle_fast_pct'])} % "
            f"of that time waiting for deliveries; {f['max_share_consumer']} took the most, "
            f"{n(f['max_share_pct'])} %{slow}.")


def _shape(series: list[dict[str, Any]]) -> str:
    figs = sorted((s["figures"] for s in series), key=lambda f: f["prefetch"])
    low, high = figs[0], figs[-1]
    best = max(figs, key=lambda f: f["throughput_per_s"])
    calm = min(figs[1:], key=lambda f: f["idle_fast_pct"])
    return (f"The shape: prefetch {n(low['prefetch'])} left the fast consumers idle "
            f"{n(low['idle_fast_pct'])} % of the time waiting for round trips ({n(low['throughput_per_s'])} "
            f"msgs/s); prefetch {n(calm['prefetch'])} removed most of the wait (idle "
            f"{n(calm['idle_fast_pct'])} %, {n(calm['throughput_per_s'])} msgs/s); the fastest drain was at "
            f"prefetch {n(best['prefetch'])} ({n(best['throughput_per_s'])} msgs/s); at prefetch "
            f"{n(high['prefetch'])} "
            f"{high['max_share_consumer']} held {n(high['max_share_pct'])} % of the work and the drain took "
            f"{n(high['drain_s'])} s ({n(high['throughput_per_s'])} msgs/s), the fast consumers idle "
            f"{n(high['idle_fast_pct'])} % of it.")


def explain(run: dict[str, Any]) -> list[str]:
    out = [_sentence(s) for s in run["series"]]
    by_target: dict[str, list[dict[str, Any]]] = {}
    for s in run["series"]:
        by_target.setdefault(s["target"], []).append(s)
    for target, series in by_target.items():
        if len(series) > 1:
            out.append(f"{target}: {_shape(series)}")
    return out
