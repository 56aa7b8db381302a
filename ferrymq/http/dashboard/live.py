"""GET /api/ferrymq/live: server-sent events, one JSON snapshot of the broker per second.

A snapshot reads counters only (queue counts and lifecycle counters, consumer credit, channel and
connection tallies, partition offsets): it never walks messages. Rates are the counter deltas
between two snapshots of the same stream divided by the time between them. With many queues only
the deepest ``HTTP_LIVE_QUEUE_ROWS_MAX`` get rows; totals always cover every queue, and the loop
is yielded to every few hundred queues so a large broker does not stall it.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from typing import Any

from aiohttp import web

from ferrymq import limits
from ferrymq.core.queue import Queue
from ferrymq.core.stream_queue import StreamQueue
from ferrymq.http.plane import PLANE, Plane

routes = web.RouteTableDef()
# Set when the HTTP plane shuts down: open streams end at once instead of holding the shutdown.
STOPPING = web.AppKey("live_stopping", asyncio.Event)

YIELD_EVERY = 300  # queues read between two yields to the loop
RATE_KEYS = ("published", "delivered", "acked", "requeued", "dead_lettered")
TOTALS = ("", "\0totals")  # the key the broker-wide sums are remembered under


class Rates:
    """Counter values seen at the previous snapshot, to turn counters into per-second rates."""

    def __init__(self) -> None:
        self.at_ms = 0
        self.previous: dict[tuple[str, str], tuple[int, ...]] = {}
        self.totals: tuple[int, ...] = (0,) * len(RATE_KEYS)

    def per_second(self, key: tuple[str, str], now: tuple[int, ...], dt_s: float) -> dict[str, float]:
        before = self.previous.get(key, now)
        return {k: round(max(0, n - b) / dt_s, 1) for k, n, b in zip(RATE_KEYS, now, before, strict=True)}


async def snapshot(plane: Plane, rates: Rates) -> dict[str, Any]:
    now_ms = plane.clock.monotonic_ms()
    dt_s = max((now_ms - rates.at_ms) / 1000, 0.001) if rates.at_ms else 1.0
    totals, sums, found = await _scan(plane)
    seen = {(vname, q.name): counters for vname, q, counters in found}
    top = heapq.nlargest(limits.HTTP_LIVE_QUEUE_ROWS_MAX, found, key=lambda f: f[1].message_count)
    top.sort(key=lambda f: (-f[1].message_count, f[0], f[1].name))
    rows = [_queue_row(vname, q, rates.per_second((vname, q.name), counters, dt_s), now_ms)
            for vname, q, counters in top]
    total_rates = rates.per_second(TOTALS, sums, dt_s) if rates.at_ms else {}
    rates.previous, rates.at_ms = seen, now_ms
    rates.previous[TOTALS] = sums
    return {
        "at_ms": plane.clock.now_ms(),
        "interval_ms": limits.HTTP_LIVE_INTERVAL_MS,
        "totals": {**totals, **_rates_or_zero(total_rates), **_tallies(plane)},
        "alarms": _alarms(plane),
        "storage": _storage(plane),
        "queues": rows,
        "queues_shown": len(rows),
        "kafka": _kafka(plane),
    }


Found = list[tuple[str, Queue, tuple[int, ...]]]


async def _scan(plane: Plane) -> tuple[dict[str, int], tuple[int, ...], Found]:
    """Counters of every queue (totals over all), yielding to the loop every YIELD_EVERY."""
    totals = dict.fromkeys(("depth", "unacked", "consumers", "queues"), 0)
    sums = [0] * len(RATE_KEYS)
    found: Found = []
    for vname, vhost in list(plane.broker.vhosts.items()):
        for queue in list(vhost.queues.values()):
            counters = tuple(queue.counters[k] for k in RATE_KEYS)
            for i, n in enumerate(counters):
                sums[i] += n
            totals["depth"] += queue.message_count
            totals["unacked"] += queue.unacked_count
            totals["consumers"] += len(queue.consumers)
            totals["queues"] += 1
            found.append((vname, queue, counters))
            if len(found) % YIELD_EVERY == 0:
                await asyncio.sleep(0)
    return totals, tuple(sums), found


def _rates_or_zero(r: dict[str, float]) -> dict[str, float]:
    return {f"{k}_rate": r.get(k, 0.0) for k in RATE_KEYS}


def _storage(plane: Plane) -> dict[str, Any]:
    """The commit pipeline's counters, and its fsync latency: the last group commit's and the mean."""
    latency = plane.commit.fsync_latency
    return {**plane.commit.counters, "fsync_last_us": plane.commit.last_commit_us,
            "fsync_mean_us": latency.sum // latency.count if latency.count else 0}


def _queue_row(vhost: str, queue: Queue, rate: dict[str, float], now_ms: int) -> dict[str, Any]:
    oldest = queue.oldest_enqueued_ms()
    return {
        "oldest_age_ms": now_ms - oldest if oldest else None,
        "vhost": vhost,
        "name": queue.name,
        "type": "stream" if isinstance(queue, StreamQueue) else "classic",
        "durable": queue.durable,
        "ready": queue.message_count,
        "unacked": queue.unacked_count,
        "consumers": len(queue.consumers),
        "rates": rate,
        "redeliveries": queue.counters["requeued"],
        "dead_lettered": queue.counters["dead_lettered"],
        "dead_letter_exchange": queue.args.dead_letter_exchange,
        "in_flight": [{"tag": c.tag, "unacked": c.unacked,
                       "prefetch": c.prefetch or c.channel.prefetch_global}
                      for c in queue.consumers[:limits.HTTP_LIVE_QUEUE_ROWS_MAX]],
    }


def _tallies(plane: Plane) -> dict[str, int]:
    return {"connections": len(plane.amqp.connections), "channels": len(plane.broker.channels)}


def _alarms(plane: Plane) -> dict[str, Any]:
    amqp = plane.amqp
    blocked = sum(1 for c in amqp.connections if c.blocked_sent or "alarm" in c.pause_reasons)
    return {"memory": "memory" in amqp.alarms, "disk": "disk" in amqp.alarms,
            "reason": amqp.alarm_reason, "blocked_publishers": blocked}


def _kafka(plane: Plane) -> dict[str, Any]:
    topics = {n: t for n, t in plane.streams.topics.topics.items() if not t.internal}  # as the API lists
    groups = plane.kafka.coordinator.groups if plane.kafka is not None else {}
    return {"topics": len(topics), "partitions": sum(len(t.logs) for t in topics.values()),
            "groups": len(groups)}


@routes.get("/api/ferrymq/live")
async def live(request: web.Request) -> web.StreamResponse:
    """One ``data:`` event per interval until the client goes away."""
    plane = request.app[PLANE]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    await response.prepare(request)
    rates = Rates()
    stopping = request.app[STOPPING]
    try:
        while not stopping.is_set():
            data = json.dumps(await snapshot(plane, rates), separators=(",", ":"))
            await response.write(f"data: {data}\n\n".encode())
            try:
                await asyncio.wait_for(stopping.wait(), limits.HTTP_LIVE_INTERVAL_MS / 1000)
            except TimeoutError:
                pass
    except ConnectionResetError:  # the page went away
        pass
    return response


def install(app: web.Application) -> None:
    """Routes, and the shutdown hook that ends open streams."""
    app[STOPPING] = asyncio.Event()

    async def stop_streams(app: web.Application) -> None:
        app[STOPPING].set()

    app.on_shutdown.append(stop_streams)
    app.router.add_routes(routes)


@routes.get("/api/ferrymq/snapshot")
async def one_snapshot(request: web.Request) -> web.Response:
    """The same snapshot once, as plain JSON (for scripts and tests; rates need two, so are 0)."""
    data = await snapshot(request.app[PLANE], Rates())
    return web.json_response(data)
