"""Task queue: competing consumers on one durable queue, manual acks, a share of tasks failing once
and requeued, and the worker count scaled from one variant to the next. What it shows: the queue's
depth and the throughput against the number of workers, redeliveries from requeues, and (with a
consumer fault) that a killed worker's unacked tasks go to the others, none lost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced

MODES = ("amqp",)


@dataclass
class Params:
    workers: list[int] = field(default_factory=lambda: [1, 2, 4])  # one variant per count
    rate: float = 300.0  # tasks offered per second
    work_ms: float = 5.0  # time per task in a worker
    prefetch: int = 10
    size: int = 256
    requeue_pct: float = 2.0  # share of tasks whose first delivery fails (nack, requeue)

    def check(self) -> None:
        if not self.workers or min(self.workers) < 1:
            raise ValueError("workers: a list of worker counts, each >= 1")
        if self.rate <= 0 or self.prefetch < 1:
            raise ValueError("rate must be > 0 and prefetch >= 1")


async def run(ctx: LabContext, p: Params) -> None:
    seconds = ctx.duration / len(p.workers)
    threshold = p.requeue_pct / 100.0

    def headers(msg_id: int) -> dict[str, Any] | None:
        return {"lab-fail-once": 1} if ctx.rng.random() < threshold else None

    ctx.check_faults("task-queue")
    for count in p.workers:
        queue = ctx.name(f"tasks-{count}")
        await common.declare_queue(ctx.target.amqp_url, queue)
        series = ctx.series(f"{count} worker{'s' if count > 1 else ''}")
        for _ in range(count):
            await ctx.worker(series, queue, prefetch=p.prefetch, work_ms=p.work_ms)
        producer = await Producer(series, ctx.target.amqp_url, queue, size=p.size, headers=headers).open()
        series.begin()
        async with common.sampling(series, ctx.target.amqp_url, [queue]), ctx.faults_on(series, seconds):
            await paced(p.rate, seconds, producer.send)
            await producer.close()
            settled = await common.settle(series)
        series.figure("capacity_per_s", round(count * 1000.0 / max(p.work_ms, 0.001), 1))
        series.figure("settled", settled)
        series.end()
        await ctx.stop_workers()
        await common.drain(series, ctx.target.amqp_url, queue)
        await common.delete_queues(ctx.target.amqp_url, [queue])


def kept_up(s: dict[str, Any]) -> tuple[float, float]:
    """(offered, processed) per second over the buckets in which the producer was sending."""
    tl = s["timeline"]
    pairs = [(i, o) for i, o in zip(tl["sent_per_s"], tl["received_per_s"]) if i > 0]
    if not pairs:
        return 0.0, 0.0
    return sum(i for i, _ in pairs) / len(pairs), sum(o for _, o in pairs) / len(pairs)


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        depth = [d for d in s["timeline"]["gauges"].get("depth", []) if d is not None]
        offered, processed = kept_up(s)
        verdict = "kept up" if processed >= 0.95 * offered else "fell behind"
        capacity = s["figures"].get("capacity_per_s", 0)
        out.append(f"{s['name']}: {verdict} — {n(processed)} tasks/s processed while {n(offered)}/s were "
                   f"offered (nominal capacity {n(capacity)}/s); the queue peaked "
                   f"at {n(max(depth) if depth else 0)} ready, p99 {n(s['latency_ms']['p99'])} ms from send "
                   f"to processing; {n(s['totals']['failed'])} first attempts failed and were requeued.")
    return out
