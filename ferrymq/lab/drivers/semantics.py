"""Delivery semantics under consumer crashes: at-most-once (ack or commit before the work),
at-least-once (after it) and effectively-once (after it, with an idempotent consumer that records
processed ids in a store surviving the crash). Each handler applies its effect halfway through its
work (``ferrymq.lab.effects``), so a kill -9 lands before or after the effect as it would in a real
worker. What it shows, against the producer's ledger: at-most-once loses what a crash interrupted
and never repeats, at-least-once loses nothing and repeats, effectively-once does neither.

Queue mode runs the AMQP worker (``--ack before|after``, ``--dedupe``); log mode the Kafka worker
(``--commit before|after``, ``--dedupe``; the effectively-once producer is idempotent too)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import amqp, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common, group
from ferrymq.lab.effects import read_ids
from ferrymq.lab.explain import n, pct
from ferrymq.lab.pacing import paced

MODES = ("amqp", "kafka")
VARIANTS = ("at-most-once", "at-least-once", "effectively-once")
GUARANTEE = {"at-most-once": "no duplicates, losses allowed",
             "at-least-once": "no losses, duplicates allowed",
             "effectively-once": "no losses and no duplicate effects"}


@dataclass
class Params:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    rate: float = 100.0  # messages offered per second
    work_ms: float = 8.0  # a handler's work; its effect lands halfway
    prefetch: int = 20  # queue mode: unacked deliveries per worker
    batch: int = 20  # log mode: records per poll
    partitions: int = 3
    session_ms: int = 3000  # log mode: how long the coordinator waits for a killed member (Kafka: >= 6 s
    # unless group.min.session.timeout.ms is lowered; FerryMQ accepts 1 s)
    size: int = 128

    def check(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)} (not {', '.join(bad)})")
        if self.rate <= 0 or self.prefetch < 1 or self.batch < 1:
            raise ValueError("rate must be > 0, prefetch and batch >= 1")


def _options(variant: str, mode: str, p: Params, store: str) -> tuple[str, ...]:
    when = "before" if variant == "at-most-once" else "after"
    opts: tuple[str, ...] = ("--effect-at", "mid", "--work-ms", str(p.work_ms))
    opts += ("--ack", when) if mode == "amqp" else ("--commit", when, "--max-records", str(p.batch),
                                                   "--session-ms", str(p.session_ms))
    return opts + (("--dedupe", store) if variant == "effectively-once" else ())


async def run(ctx: LabContext, p: Params) -> None:
    seconds = ctx.duration / len(p.variants)
    ctx.check_faults("semantics")
    for variant in p.variants:
        store = str(ctx.workdir / f"{variant}.sqlite")
        series = ctx.series(variant)
        if ctx.target.mode == "amqp":
            await _queue_mode(ctx, p, series, variant, store, seconds)
        else:
            await _log_mode(ctx, p, series, variant, store, seconds)
        await ctx.stop_workers()
        _books(series, variant, store)
        series.end()


async def _queue_mode(ctx: LabContext, p: Params, series: Any, variant: str, store: str,
                      seconds: float) -> None:
    queue = ctx.name(f"semantics-{variant}")
    await common.declare_queue(ctx.target.amqp_url, queue)
    await ctx.worker(series, queue, prefetch=p.prefetch, options=_options(variant, "amqp", p, store))
    producer = await amqp.Producer(series, ctx.target.amqp_url, queue, size=p.size).open()
    series.begin()
    async with common.sampling(series, ctx.target.amqp_url, [queue]), ctx.faults_on(series, seconds):
        await paced(p.rate, seconds, producer.send)
        await producer.close()
        series.figure("settled", await group.settle_quiet(series, quiet_s=2.0))
    await ctx.stop_workers()
    await common.delete_queues(ctx.target.amqp_url, [queue])


async def _log_mode(ctx: LabContext, p: Params, series: Any, variant: str, store: str,
                    seconds: float) -> None:
    topic = ctx.name(f"semantics-{variant}")
    await kafka.create_topic(ctx.target.kafka_bootstrap, topic, p.partitions)
    group_id = ctx.name(f"g-{variant}")
    await group.kafka_worker(ctx, series, topic, group_id, _options(variant, "kafka", p, store))
    producer = await kafka.Producer(series, ctx.target.kafka_bootstrap, topic, size=p.size,
                                    idempotent=variant == "effectively-once").open()
    series.begin()
    lag = group.sampling_lag(series, ctx.target.kafka_bootstrap, topic, group_id)
    async with lag, ctx.faults_on(series, seconds):
        await paced(p.rate, seconds, producer.send)
        await producer.close()
        quiet = p.session_ms / 1000.0 + 2.0  # a member killed near the end: its partitions come back
        series.figure("settled", await group.settle_quiet(series, quiet_s=quiet))


def _books(series: Any, variant: str, store: str) -> None:
    """The scenario's table row: effects are receipts (the handler's effect reached the lab)."""
    b = series.ledger.books()
    row = {"variant": variant, "guarantee": GUARANTEE[variant], "confirmed": b["confirmed"],
           "effects": series.totals["received"], "lost": b["lost"], "duplicates": b["duplicates"],
           "skipped by the store": series.totals["deduplicated"],
           "crashes": sum(1 for e in series.events if e.kind == "fault")}
    if variant == "effectively-once":
        row["ids in the store"] = len(read_ids(store))
    series.table("delivery", [row])
    for k in ("confirmed", "effects", "lost", "duplicates", "crashes"):
        series.figure(k, row[k])


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        f, v = s["figures"], s["variant"]
        kept = {"at-most-once": f["duplicates"] == 0, "at-least-once": f["lost"] == 0,
                "effectively-once": f["lost"] == 0 and f["duplicates"] == 0}[v]
        skipped = (f", {n(s['totals']['deduplicated'])} repeated deliveries skipped by the idempotent store"
                   if v == "effectively-once" else "")
        out.append(f"{s['name']}: {n(f['crashes'])} consumer crashes; of {n(f['confirmed'])} confirmed "
                   f"messages {n(f['lost'])} were lost ({pct(f['lost'], f['confirmed'])}) and "
                   f"{n(f['duplicates'])} effects were applied twice ({pct(f['duplicates'], f['confirmed'])})"
                   f"{skipped}: {v} {'gave' if kept else 'did NOT give'} its guarantee ({GUARANTEE[v]}).")
    return out
