"""Burst and backpressure: a producer offering ten times what the consumers can take, against a
queue bounded by ``x-max-length``, under three policies, one series each:

- ``block``: ``x-overflow: reject-publish`` and a producer that retries a nacked publish after a
  pause: the nacks throttle it to the consumers' pace (AMQP has no per-queue "block"; a broker's
  ``connection.blocked`` comes only at its memory or disk watermark, and the series counts any
  it sees);
- ``drop-head``: every publish is confirmed and the oldest messages are dropped to make room:
  confirmed but never delivered, by the queue's policy (counted as ``dropped``, not lost);
- ``reject-publish``: publishes beyond the bound are nacked (``publish_failed``); nothing confirmed
  is lost.

The broker's resident memory is sampled throughout (``broker_rss_mib``): a bounded queue keeps it flat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import amqp, brokerstats
from ferrymq.lab.amqp import Producer
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import common
from ferrymq.lab.explain import n, pct
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series

MODES = ("amqp",)
VARIANTS = ("block", "drop-head", "reject-publish")
QUIET_S = 1.0  # drop-head: the queue is drained when it is empty and no receipt came for this long


@dataclass
class Params:
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    max_length: int = 500  # the queue's bound (x-max-length)
    consumers: int = 2
    work_ms: float = 20.0  # per message in a consumer: capacity = consumers * 1000 / work_ms
    speedup: float = 10.0  # the producer offers speedup x capacity
    prefetch: int = 10
    size: int = 256
    retry_ms: float = 50.0  # block: the pause after a nack before the same message is published again

    def check(self) -> None:
        bad = sorted(set(self.variants) - set(VARIANTS))
        if bad or not self.variants:
            raise ValueError(f"variants: some of {', '.join(VARIANTS)}; got {', '.join(bad) or 'none'}")
        if self.max_length < 1 or self.consumers < 1 or self.work_ms <= 0 or self.speedup <= 0:
            raise ValueError("max_length and consumers must be >= 1, work_ms and speedup > 0")

    @property
    def capacity(self) -> float:
        return self.consumers * 1000.0 / self.work_ms


class RetryingProducer(Producer):
    """A publisher that takes a nack as "not now": it waits and publishes the same message again,
    so the broker's refusals pace it (each retry counted as ``retried``)."""

    def __init__(self, *args: Any, retry_s: float = 0.05, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_s = retry_s

    async def _publish(self, msg_id: int) -> None:
        from aio_pika.exceptions import DeliveryError
        from pamqp.commands import Basic

        message = self.message(msg_id)  # one body: latency counts from the first attempt
        self.series.sent()
        try:
            while True:
                with contextlib.suppress(DeliveryError):  # aio-pika raises a nack
                    result = await self.exchange.publish(message, self.routing_key, timeout=30)
                    if isinstance(result, Basic.Ack):
                        self.series.confirmed(msg_id)
                        return
                self.series.count("retried")
                await asyncio.sleep(self.retry_s)
        except Exception:  # a closed connection or a timeout: not confirmed
            self.series.count("publish_failed")
        finally:
            self.window.release()


class BlockedWatch(logging.Handler):
    """aiormq logs each ``connection.blocked`` it receives; this turns them into the series' events."""

    def __init__(self, series: Series) -> None:
        super().__init__()
        self.series, self.seen = series, 0

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "was blocked" in text or "was unblocked" in text:
            self.seen += "was blocked" in text
            label = "connection.blocked" if "was blocked" in text else "connection.unblocked"
            self.series.event("note", label)


def queue_arguments(variant: str, max_length: int) -> dict[str, Any]:
    overflow = "drop-head" if variant == "drop-head" else "reject-publish"
    return {"x-max-length": max_length, "x-overflow": overflow}


async def drained(series: Series, url: str, queue: str, timeout_s: float = common.SETTLE_S) -> bool:
    """drop-head: what was confirmed is not all coming, so wait for an empty queue and quiet consumers."""
    conn = await amqp.connect(url)
    try:
        channel = await conn.channel()
        deadline, last, quiet_since = time.monotonic() + timeout_s, -1, time.monotonic()
        while time.monotonic() < deadline:
            got = series.totals["received"]
            if got != last:
                last, quiet_since = got, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S and await amqp.depth(channel, queue) == 0:
                return True
            await asyncio.sleep(0.1)
        return False
    finally:
        await conn.close()


async def _variant(ctx: LabContext, p: Params, variant: str, seconds: float) -> None:
    queue = ctx.name(f"bounded-{variant}")
    await common.declare_queue(ctx.target.amqp_url, queue, queue_arguments(variant, p.max_length))
    series = ctx.series(variant)
    for _ in range(p.consumers):
        await ctx.worker(series, queue, prefetch=p.prefetch, work_ms=p.work_ms)
    if variant == "block":
        producer = await RetryingProducer(series, ctx.target.amqp_url, queue, size=p.size,
                                          retry_s=p.retry_ms / 1000.0).open()
    else:
        producer = await Producer(series, ctx.target.amqp_url, queue, size=p.size).open()
    watch = BlockedWatch(series)
    logging.getLogger("aiormq").addHandler(watch)
    series.begin()
    try:
        async with common.sampling(series, ctx.target.amqp_url, [queue]), \
                brokerstats.watching(series, ctx.target), ctx.faults_on(series, seconds):
            await paced(p.capacity * p.speedup, seconds, producer.send)
            load_s = series.t()
            await producer.close()
            if variant == "drop-head":
                settled = await drained(series, ctx.target.amqp_url, queue)
                series.count("dropped", series.ledger.books()["lost"])
            else:
                settled = await common.settle(series)
    finally:
        logging.getLogger("aiormq").removeHandler(watch)
    _figures(series, p, load_s, settled, watch.seen)
    series.end()
    await ctx.stop_workers()
    await common.delete_queues(ctx.target.amqp_url, [queue])


def _figures(series: Series, p: Params, load_s: float, settled: bool, blocked: int) -> None:
    series.figure("capacity_per_s", round(p.capacity, 1))
    series.figure("offered_per_s", round(p.capacity * p.speedup, 1))
    series.figure("load_s", load_s)
    series.figure("accepted_per_s", round(series.totals["confirmed"] / max(load_s, 0.001), 1))
    series.figure("connection_blocked", blocked)
    series.figure("settled", settled)


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("backpressure")
    for variant in p.variants:
        await _variant(ctx, p, variant, ctx.duration / len(p.variants))


def _memory(s: dict[str, Any]) -> str:
    f = s["figures"]
    if "broker_rss_start_mib" not in f:
        return "the broker's memory was not visible from here."
    return (f"the broker's RSS went from {n(f['broker_rss_start_mib'])} MiB to a peak of "
            f"{n(f['broker_rss_peak_mib'])} MiB.")


def _blocked(s: dict[str, Any]) -> str:
    seen = s["figures"]["connection_blocked"]
    if seen:
        return f"the broker sent connection.blocked {n(seen)} times"
    return "no connection.blocked was sent (that comes only at a memory or disk watermark)"


def _depth_peak(s: dict[str, Any]) -> float:
    return max((d for d in s["timeline"]["gauges"].get("depth", []) if d is not None), default=0)


def _sentence(s: dict[str, Any]) -> str:
    f, t, b = s["figures"], s["totals"], s["books"]
    head = (f"{s['name']}: the producer offered {n(f['offered_per_s'])} msgs/s against a consumer capacity "
            f"of {n(f['capacity_per_s'])}/s; the queue peaked at {n(_depth_peak(s))} ready")
    if s["variant"] == "block":
        body = (f"; retrying each nack, the producer was throttled to {n(f['accepted_per_s'])} accepted "
                f"msgs/s ({n(t['retried'])} nacked attempts retried) and {_blocked(s)}")
    elif s["variant"] == "drop-head":
        body = (f"; all {n(b['confirmed'])} publishes were confirmed and {n(t['dropped'])} of them "
                f"({pct(t['dropped'], b['confirmed'])}) were dropped from the head by the max-length policy: "
                "confirmed but never delivered, by design, not a loss; the consumers got the newest")
    else:
        body = (f"; {n(t['publish_failed'])} publishes were nacked (publish_failed, "
                f"{pct(t['publish_failed'], t['sent'])} of those sent) and of the {n(b['confirmed'])} "
                f"confirmed {'none was lost' if b['lost'] == 0 else n(b['lost']) + ' were LOST'}")
    return f"{head}{body}; {_memory(s)}"


def explain(run: dict[str, Any]) -> list[str]:
    return [_sentence(s) for s in run["series"]]
