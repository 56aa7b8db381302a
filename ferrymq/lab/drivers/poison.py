"""A poison message: one message that fails every time (header ``lab-fail``) among normal traffic.

Three series: ``baseline`` (no poison: what normal traffic gets), ``storm`` (the worker nacks it
with requeue, forever: a redelivery storm that costs broker CPU and starves normal messages) and
``delivery-limit`` (the queue's ``x-delivery-limit`` dead-letters it after a few attempts to a
dead-letter queue, which the driver consumes). ``x-delivery-limit`` is a quorum-queue feature in
RabbitMQ 3.10, so on RabbitMQ that queue is declared ``x-queue-type: quorum``; FerryMQ has it on
classic queues (an extension), so there it stays classic. The target is told apart by the
``product`` of the AMQP server properties.

The ledger books the normal traffic only: the poison is published with a confirm but kept out of
the books (it is never processed, by construction). Its history is a table of its own: each
delivery (time, consumer, redelivered flag) and, once dead-lettered, its ``x-death`` header; on
FerryMQ the broker's own trace of it too (it carries ``x-ferrymq-trace``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import amqp, body, brokerstats
from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n
from ferrymq.lab.pacing import paced
from ferrymq.lab.poison_history import History, broker_trace
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import FAILED, FAILED_REDELIVERED

MODES = ("amqp",)
VARIANTS = ("baseline", "storm", "delivery-limit")


@dataclass
class Params:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    rate: float = 250.0  # normal messages offered per second
    workers: int = 2
    work_ms: float = 4.0
    prefetch: int = 1
    delivery_limit: int = 3
    poison_at: float = 0.2  # when the poison goes out, as a share of the series' load
    size: int = 256

    def check(self) -> None:
        bad = sorted(set(self.variants) - set(VARIANTS))
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)}; got {', '.join(bad) or 'none'}")
        if self.rate <= 0 or self.workers < 1 or self.prefetch < 1 or self.delivery_limit < 1:
            raise ValueError("rate must be > 0; workers, prefetch and delivery_limit >= 1")
        if not 0.0 <= self.poison_at < 1.0:
            raise ValueError("poison_at: a share of the load, 0 <= poison_at < 1")


async def server_product(url: str) -> str:
    """``FerryMQ`` or the broker's product name, from the AMQP server properties. FerryMQ calls
    itself RabbitMQ in ``product`` (clients key features on it) and names itself in ``platform``."""
    conn = await amqp.connect(url)
    try:
        props = {k: v.decode() if isinstance(v, bytes) else str(v)
                 for k, v in (conn.transport.connection.server_properties or {}).items()}
    finally:
        await conn.close()
    return "FerryMQ" if "FerryMQ" in props.get("platform", "") else props.get("product", "")


def queue_arguments(variant: str, p: Params, dlq: str, product: str) -> dict[str, Any]:
    if variant != "delivery-limit":
        return {}
    args: dict[str, Any] = {"x-delivery-limit": p.delivery_limit, "x-dead-letter-exchange": "",
                            "x-dead-letter-routing-key": dlq}
    if product != "FerryMQ":  # RabbitMQ 3.10: delivery limits are for quorum queues only
        args["x-queue-type"] = "quorum"
    return args


async def publish_poison(producer: Producer, series: Series, history: History) -> None:
    """The poison: a lab body (so the worker knows its id) that every delivery fails."""
    import aio_pika

    msg_id = series.next_id()
    history.poison_id, history.published_t = msg_id, series.t()
    message = aio_pika.Message(body.encode(msg_id, series.now_ns(), producer.size),
                               delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                               headers={"lab-fail": 1, "x-ferrymq-trace": "poison"})
    await producer.exchange.publish(message, producer.routing_key, timeout=30)
    series.event("note", "poison published")


@contextlib.asynccontextmanager
async def dead_letters(url: str, dlq: str, series: Series, history: History) -> AsyncIterator[None]:
    """Consume the dead-letter queue while the block runs: each message counted, the poison's
    ``x-death`` kept for its history."""
    conn = await amqp.connect(url)
    try:
        channel = await conn.channel()
        queue = await channel.get_queue(dlq, ensure=False)

        async def on_message(msg: Any) -> None:
            ids = body.decode(msg.body)
            series.count("dead_lettered")
            if ids is not None and ids[0] == history.poison_id:
                history.dead_lettered(series.t(), (msg.headers or {}).get("x-death"))
            await msg.ack()

        await queue.consume(on_message)
        yield
    finally:
        with contextlib.suppress(Exception):
            await conn.close()


async def _load(ctx: LabContext, p: Params, series: Series, queue: str, history: History | None,
                seconds: float) -> None:
    producer = await Producer(series, ctx.target.amqp_url, queue, size=p.size).open()
    series.begin()
    async with common.sampling(series, ctx.target.amqp_url, [queue]), \
            brokerstats.watching(series, ctx.target), ctx.faults_on(series, seconds):
        await paced(p.rate, seconds * p.poison_at, producer.send)
        if history is not None:
            await publish_poison(producer, series, history)
        await paced(p.rate, seconds * (1.0 - p.poison_at), producer.send)
        await producer.close()
        series.figure("settled", await common.settle(series))


async def _variant(ctx: LabContext, p: Params, variant: str, product: str, seconds: float) -> None:
    queue, dlq = ctx.name(f"work-{variant}"), ctx.name(f"dlq-{variant}")
    args = queue_arguments(variant, p, dlq, product)
    await common.declare_queue(ctx.target.amqp_url, dlq)
    await common.declare_queue(ctx.target.amqp_url, queue, args)
    series = ctx.series(variant)
    series.figure("queue_type", args.get("x-queue-type", "classic"))
    if variant == "delivery-limit":
        series.figure("delivery_limit", p.delivery_limit)
    history = History() if variant != "baseline" else None
    for _ in range(p.workers):
        name = f"c{len(ctx.workers)}"
        observe = history.observer(series, name, FAILED, FAILED_REDELIVERED) if history else None
        await ctx.worker(series, queue, prefetch=p.prefetch, work_ms=p.work_ms, fail="requeue",
                         name=name, observe=observe)
    if history is None:
        await _load(ctx, p, series, queue, None, seconds)
    else:
        async with dead_letters(ctx.target.amqp_url, dlq, series, history):
            await _load(ctx, p, series, queue, history, seconds)
            await asyncio.sleep(0.5)  # a dead letter on its way
        history.record(series)
        if product == "FerryMQ" and ctx.target.http_url:
            series.table("broker trace of the poison", await broker_trace(ctx.target.http_url, queue))
    series.end()
    await ctx.stop_workers()
    await common.delete_queues(ctx.target.amqp_url, [queue, dlq])


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("poison")
    product = await server_product(ctx.target.amqp_url)
    for variant in p.variants:
        await _variant(ctx, p, variant, product, ctx.duration / len(p.variants))


def _baseline_phrase(s: dict[str, Any], base: dict[str, Any] | None) -> str:
    if base is None:
        return ""
    return (f" (baseline: {n(base['rates']['out_per_s'])}/s, p99 {n(base['latency_ms']['p99'])} ms, "
            f"broker CPU {n(base['figures'].get('broker_cpu_mean_pct'))} %)")


def _poison_sentence(s: dict[str, Any], base: dict[str, Any] | None) -> str:
    f = s["figures"]
    head = (f"{s['name']}: the poison message was delivered {n(f['poison_deliveries'])} times "
            f"({n(f['poison_redeliveries_per_s'])} redeliveries/s while it circulated)")
    if s["variant"] == "storm":
        head += ", nacked and requeued every time: a storm that never ends by itself"
    else:
        dead = (f"dead-lettered {n(f['poison_dead_lettered_after_s'])} s after it was published "
                f"(x-death count {n(f['poison_x_death_count'])}, reason {f['poison_x_death_reason']})"
                if f.get("poison_dead_lettered_after_s") is not None else "NOT dead-lettered before the end")
        quorum = f["queue_type"] == "quorum"
        why = " (RabbitMQ 3.10 has delivery limits on quorum queues only)" if quorum else ""
        head += (f"; x-delivery-limit {n(f['delivery_limit'])} on a {f['queue_type']} queue{why} "
                 f"{dead}; {n(s['totals']['dead_lettered'])} dead-lettered in all")
    return (f"{head}; the broker's CPU averaged {n(f.get('broker_cpu_mean_pct'))} %; normal messages were "
            f"processed at {n(s['rates']['out_per_s'])}/s with p99 {n(s['latency_ms']['p99'])} ms"
            f"{_baseline_phrase(s, base)}.")


def explain(run: dict[str, Any]) -> list[str]:
    bases = {s["target"]: s for s in run["series"] if s["variant"] == "baseline"}
    out = []
    for s in run["series"]:
        base = bases.get(s["target"])
        if s["variant"] == "baseline":
            out.append(f"{s['name']}: no poison; normal messages processed at "
                       f"{n(s['rates']['out_per_s'])}/s, p99 {n(s['latency_ms']['p99'])} ms, broker CPU "
                       f"{n(s['figures'].get('broker_cpu_mean_pct'))} %.")
        else:
            out.append(_poison_sentence(s, base))
    return out
