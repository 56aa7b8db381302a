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

from ferrymq.lab import amqp, body, kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common, group
from ferrymq.lab.drivers.retention import read_log
from ferrymq.lab.effects import read_ids
from ferrymq.lab.explain import n, pct
from ferrymq.lab.pacing import paced

MODES = ("amqp", "kafka")
VARIANTS = ("at-most-once", "at-least-once", "effectively-once")
# log mode, on request (they need a network fault, e.g. --fault cut@30%+500ms): a produce whose
# response is cut off after the broker appended it is retried; only idempotence keeps it single
PRODUCER_VARIANTS = ("producer-retries", "idempotent-producer")
GUARANTEE = {"at-most-once": "no duplicates, losses allowed",
             "at-least-once": "no losses, duplicates allowed",
             "effectively-once": "no losses and no duplicate effects",
             "producer-retries": "every record in the log, copies allowed",
             "idempotent-producer": "every record in the log once"}


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
        bad = [v for v in self.variants if v not in VARIANTS + PRODUCER_VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS + PRODUCER_VARIANTS)} "
                             f"(not {', '.join(bad)})")
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
        if variant in PRODUCER_VARIANTS:
            await _producer_mode(ctx, p, series, variant, seconds)
        elif ctx.target.mode == "amqp":
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


async def _producer_mode(ctx: LabContext, p: Params, series: Any, variant: str, seconds: float) -> None:
    """No consumer during the load: afterwards the whole log is read once, so a receipt counted
    twice is a record the log holds twice."""
    if ctx.target.mode != "kafka" or ctx.target.actors.network is None:
        raise ValueError(f"semantics: variant {variant} runs in log mode with a network fault "
                         "(--fault cut@30%+500ms)")
    topic = ctx.name(f"semantics-{variant}")
    await kafka.create_topic(ctx.target.kafka_bootstrap, topic, 1)
    producer = await kafka.Producer(series, ctx.target.kafka_bootstrap, topic, size=p.size,
                                    idempotent=variant == "idempotent-producer").open()
    series.begin()
    # the lag of a group that reads only after the load: the records the log holds meanwhile
    lag = group.sampling_lag(series, ctx.target.kafka_bootstrap, topic, ctx.name(f"g-{variant}"))
    async with lag, ctx.faults_on(series, seconds):
        await paced(p.rate, seconds, producer.send)
        await producer.close()
    for r in (await read_log(ctx.target.kafka_bootstrap, topic))[2]:
        if r.value is not None and (ids := body.decode(r.value)) is not None:
            series.received(*ids)


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


def _producer_sentence(s: dict[str, Any], kept: bool) -> str:
    f, v = s["figures"], s["variant"]
    return (f"{s['name']}: {n(f['crashes'])} network faults between producer and broker; of "
            f"{n(f['confirmed'])} confirmed records the log is missing {n(f['lost'])} and holds "
            f"{n(f['duplicates'])} twice ({pct(f['duplicates'], f['confirmed'])}): {v} "
            f"{'gave' if kept else 'did NOT give'} {GUARANTEE[v]}.")


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        f, v = s["figures"], s["variant"]
        kept = {"at-most-once": f["duplicates"] == 0, "at-least-once": f["lost"] == 0,
                "effectively-once": f["lost"] == 0 and f["duplicates"] == 0,
                "producer-retries": f["lost"] == 0,
                "idempotent-producer": f["lost"] == 0 and f["duplicates"] == 0}[v]
        if v in PRODUCER_VARIANTS:
            out.append(_producer_sentence(s, kept))
            continue
        skipped = (f", {n(s['totals']['deduplicated'])} repeated deliveries skipped by the idempotent store"
                   if v == "effectively-once" else "")
        out.append(f"{s['name']}: {n(f['crashes'])} consumer crashes; of {n(f['confirmed'])} confirmed "
                   f"messages {n(f['lost'])} were lost ({pct(f['lost'], f['confirmed'])}) and "
                   f"{n(f['duplicates'])} effects were applied twice ({pct(f['duplicates'], f['confirmed'])})"
                   f"{skipped}: {v} {'gave' if kept else 'did NOT give'} its guarantee ({GUARANTEE[v]}).")
    return out
