"""Delayed delivery: timers (messages due a few seconds after they are sent) across a broker
restart, and how late each one arrives (receipt time minus due time).

Two mechanisms, both without plugins on FerryMQ: per-message TTL into a holding queue that
dead-letters to the work queue (the classic pattern that also runs on a plain RabbitMQ), and
FerryMQ's built-in ``x-delayed-message`` exchange (RabbitMQ needs a plugin for it: the variant is
skipped when the exchange cannot be declared). The TTL pattern is run twice because of its
head-of-line caveat: a queue expires messages only at its head, so with random delays a long
timer at the head holds back shorter ones behind it; with delays that increase with send time,
due times are in queue order and nothing waits. The lateness histogram shows the difference."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import amqp, body
from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("amqp",)
VARIANTS = ("ttl-increasing", "ttl-random", "delayed-exchange")
LABELS = {"ttl-increasing": "TTL + dead-letter, increasing delays",
          "ttl-random": "TTL + dead-letter, random delays",
          "delayed-exchange": "x-delayed-message exchange, random delays"}
DUE = "lab-due-ms"  # header: the timer's delay in ms; due = the body's send time + this
RECONNECT_S = 0.25
EARLY_MS = 5  # clock granularity: receipts earlier than this before their due time count as early
EDGES_MS = (0, 10, 50, 100, 250, 500, 1000, 2000, 5000)  # the histogram's bucket edges


@dataclass
class Params:
    timers: int = 10_000  # per variant
    short_timers: int = 1_000  # per variant in the short form (--short, the test suite)
    send_share: float = 0.5  # timers are sent over this share of each variant's time
    delay_min_s: float = 1.0
    delay_max_s: float = 5.0
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    size: int = 128

    def check(self) -> None:
        if min(self.timers, self.short_timers) < 1 or not 0 < self.send_share <= 1:
            raise ValueError("timers must be >= 1 and send_share in (0, 1]")
        if not 0 < self.delay_min_s <= self.delay_max_s:
            raise ValueError("delays: 0 < delay_min_s <= delay_max_s")
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)} (not {', '.join(bad) or 'none'})")


def delays_ms(ctx: LabContext, p: Params, variant: str, count: int) -> list[int]:
    """One delay per timer id: random in [min, max], or rising from min to max over the send."""
    lo, hi = p.delay_min_s * 1000.0, p.delay_max_s * 1000.0
    if variant == "ttl-increasing":
        return [int(lo + (hi - lo) * i / max(1, count - 1)) for i in range(count)]
    return [int(lo + (hi - lo) * ctx.rng.random()) for _ in range(count)]


class Lateness:
    """Receipt time minus due time per first receipt, in ms; the per-bucket maximum as a gauge."""

    def __init__(self, series: Series) -> None:
        self.series = series
        self.values: list[float] = []
        self.bucket, self.bucket_max = -1, 0.0

    def record(self, msg: Any) -> None:
        ids = body.decode(msg.body)
        if ids is None:
            return
        now = self.series.now_ns()
        if self.series.received(ids[0], ids[1], bool(msg.redelivered)):
            due_ns = ids[1] + int((msg.headers or {}).get(DUE, 0)) * 1_000_000
            late = (now - due_ns) / 1e6
            self.values.append(late)
            k = (now - self.series.origin_ns) // self.series.interval_ns
            self.bucket, self.bucket_max = k, late if k != self.bucket else max(self.bucket_max, late)
            self.series.gauge("lateness_ms", round(self.bucket_max, 1))

    def record_figures(self) -> None:
        v = sorted(self.values)
        s = self.series
        pick = (lambda q: round(v[min(len(v) - 1, int(q * len(v)))], 1)) if v else (lambda q: None)
        s.figure("lateness_p50_ms", pick(0.50))
        s.figure("lateness_p99_ms", pick(0.99))
        s.figure("lateness_max_ms", round(v[-1], 1) if v else None)
        s.figure("lateness_min_ms", round(v[0], 1) if v else None)
        s.figure("early", sum(1 for x in v if x < -EARLY_MS))
        s.table("lateness histogram", histogram(v))


def histogram(values: list[float]) -> list[dict[str, Any]]:
    rows = [{"lateness": f"early (< -{EARLY_MS} ms)", "timers": sum(1 for x in values if x < -EARLY_MS)}]
    bounds = [(-EARLY_MS, EDGES_MS[1]), *itertools.pairwise(EDGES_MS[1:])]
    for lo, hi in bounds:
        rows.append({"lateness": f"{max(lo, 0)}-{hi} ms", "timers": sum(1 for x in values if lo <= x < hi)})
    rows.append({"lateness": f">= {EDGES_MS[-1]} ms", "timers": sum(1 for x in values if x >= EDGES_MS[-1])})
    return rows


async def topology(ctx: LabContext, variant: str) -> tuple[str, str, list[str]]:
    """(exchange, routing key) to publish to and the queues to remove afterwards. Raises when the
    broker has no x-delayed-message exchange (RabbitMQ without its plugin)."""
    work = ctx.name(f"{variant}-work")
    await common.declare_queue(ctx.target.amqp_url, work)
    if variant != "delayed-exchange":
        hold = ctx.name(f"{variant}-hold")
        await common.declare_queue(ctx.target.amqp_url, hold, {"x-dead-letter-exchange": "",
                                                               "x-dead-letter-routing-key": work})
        return "", hold, [work, hold]
    exchange = ctx.name("delayed")
    conn = await amqp.connect(ctx.target.amqp_url)
    try:
        channel = await conn.channel()
        ex = await channel.declare_exchange(exchange, "x-delayed-message", durable=True,
                                            arguments={"x-delayed-type": "direct"})
        queue = await channel.get_queue(work, ensure=False)
        await queue.bind(ex, routing_key=work)
    finally:
        await conn.close()
    return exchange, work, [work]


async def consume_forever(url: str, queue: str, on_message: Any, stop: asyncio.Event) -> None:
    """Consume ``queue`` with manual acks, reconnecting after the connection dies (a broker kill),
    as a supervised consumer does; unacked deliveries of the dead connection are redelivered."""
    import aio_pika

    while not stop.is_set():
        closed = asyncio.Event()
        conn: Any = None
        try:
            conn = await aio_pika.connect(url, timeout=2)
            conn.close_callbacks.add(lambda *_, e=closed: e.set())
            channel = await conn.channel()
            await channel.set_qos(prefetch_count=100)
            await (await channel.get_queue(queue, ensure=False)).consume(on_message)
            waits = [asyncio.create_task(e.wait()) for e in (closed, stop)]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in waits:
                w.cancel()
        except Exception:
            await asyncio.sleep(RECONNECT_S)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


@contextlib.asynccontextmanager
async def consuming(url: str, queue: str, lateness: Lateness) -> Any:
    async def on_message(msg: Any) -> None:
        lateness.record(msg)
        with contextlib.suppress(Exception):  # a channel gone with the broker: redelivered later
            await msg.ack()

    stop = asyncio.Event()
    task = asyncio.create_task(consume_forever(url, queue, on_message, stop))
    try:
        yield
    finally:
        stop.set()
        await task


async def one_variant(ctx: LabContext, p: Params, variant: str, seconds: float) -> None:
    exchange, key, queues = await topology(ctx, variant)
    series = ctx.series(LABELS[variant])
    count = p.short_timers if ctx.short else p.timers
    delays = delays_ms(ctx, p, variant, count)
    lateness = Lateness(series)
    producer = await Producer(series, ctx.target.amqp_url, key, exchange=exchange, size=p.size,
                              headers=lambda i: {DUE: delays[i], "x-delay": delays[i]},
                              expiration_ms=(lambda i: delays[i]) if not exchange else None).open()

    async def send() -> bool:
        return series.totals["sent"] < count and await producer.send()

    series.begin()
    sampling = common.sampling(series, ctx.target.amqp_url, queues[::-1])  # depth: the waiting timers
    async with sampling, consuming(ctx.target.amqp_url, queues[0], lateness), ctx.faults_on(series, seconds):
        await paced(count / (seconds * p.send_share), seconds * p.send_share, send)
        await producer.close()
        await asyncio.sleep(max(0.0, seconds - series.t()))
        series.figure("settled", await common.settle(series, 30.0 + p.delay_max_s,  # timers not yet due
                                                     stall_s=common.STALL_S + p.delay_max_s))
    lateness.record_figures()
    series.figure("lost_ids", common.lost_ids(series))
    series.end()
    await common.delete_queues(ctx.target.amqp_url, queues)


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("delayed")
    seconds = ctx.duration / len(p.variants)
    skipped = []
    for variant in p.variants:
        try:
            await one_variant(ctx, p, variant, seconds)
        except Exception as exc:
            if variant != "delayed-exchange":
                raise
            skipped.append(f"{LABELS[variant]} skipped: the broker refused the exchange ({exc})")
    if skipped and ctx.series_list:
        ctx.series_list[-1].figure("skipped", skipped)


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        f = s["figures"]
        b = s["books"]
        out.append(f"{s['name']}: {n(b['confirmed'] - b['lost'])} of {n(b['confirmed'])} "
                   f"confirmed timers arrived; lateness p50 {n(f.get('lateness_p50_ms'))} ms, p99 "
                   f"{n(f.get('lateness_p99_ms'))} ms, max {n(f.get('lateness_max_ms'))} ms; "
                   f"{n(f.get('early'))} early.")
        out += list(f.get("skipped", []))
    by = {s["variant"]: s["figures"] for s in run["series"]}
    inc, rnd = by.get(LABELS["ttl-increasing"]), by.get(LABELS["ttl-random"])
    if inc and rnd and inc.get("lateness_p99_ms") is not None and rnd.get("lateness_p99_ms") is not None:
        out.append(f"Head-of-line blocking in the TTL pattern: with random delays p99 lateness was "
                   f"{n(rnd['lateness_p99_ms'])} ms against {n(inc['lateness_p99_ms'])} ms with delays "
                   "that increase with send time: a queue expires messages only at its head, so a long "
                   "timer holds back the shorter ones queued behind it.")
    return out
