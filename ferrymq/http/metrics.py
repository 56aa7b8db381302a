"""Prometheus /metrics (prometheus-client), with rabbitmq_prometheus's names where they exist.

Served at ``/metrics`` and ``/metrics/per-object``, both per object (``vhost`` and ``queue`` labels,
as rabbitmq_prometheus's per-object endpoint). Nothing here runs per message: a scrape reads the
core's plain counters and fixed-bucket histograms (ferrymq.core.stats) at scrape time.

Why built across loop turns: 10,000 queues make ~100,000 samples; building and rendering them in
one go would stall the loop for a second. ``gather`` yields to the loop every
``limits.METRICS_SCRAPE_YIELD_QUEUES`` queues, and rendering (prometheus_client's
``generate_latest``) runs one chunk of samples per loop turn.

Differences from rabbitmq_prometheus: ``rabbitmq_queue_messages_published_total`` carries
``vhost``/``queue`` only (RabbitMQ adds channel and exchange labels); the global counters sum the
live queues' counters (a deleted queue's counts leave the sums), except received / routed /
unroutable, which the broker counts itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from ferrymq import limits
from ferrymq.core.queue import Queue
from ferrymq.core.stats import Histogram
from ferrymq.http.plane import PLANE, Plane

routes = web.RouteTableDef()

QL = ["vhost", "queue"]
PROTO = {"protocol": "amqp091"}
CLASSIC = {"protocol": "amqp091", "queue_type": "rabbit_classic_queue"}
RENDER_CHUNK_SAMPLES = 5_000  # samples rendered per loop turn

# (name, help, counters key) per queue: RabbitMQ's per-object names first, then FerryMQ's own
QUEUE_COUNTERS = (
    ("rabbitmq_queue_messages_published_total", "Messages published into the queue", "published"),
    ("ferrymq_queue_messages_delivered_total", "Messages delivered from the queue", "delivered"),
    ("ferrymq_queue_messages_redelivered_total", "Deliveries of messages delivered before",
     "redelivered"),
    ("ferrymq_queue_messages_acked_total", "Deliveries acknowledged", "acked"),
    ("ferrymq_queue_messages_dead_lettered_total", "Messages dead-lettered from the queue",
     "dead_lettered"),
    ("ferrymq_queue_messages_expired_total", "Messages expired in the queue (TTL)", "expired"),
    ("ferrymq_queue_messages_dropped_total", "Messages dropped or refused by the length limit",
     "dropped"),
)
QUEUE_GAUGES = (
    ("rabbitmq_queue_messages_ready", "Messages ready to be delivered to consumers"),
    ("rabbitmq_queue_messages_unacked", "Messages delivered to consumers but not yet acknowledged"),
    ("rabbitmq_queue_messages", "Sum of ready and unacknowledged messages - total queue depth"),
    ("rabbitmq_queue_consumers", "Consumers on a queue"),
    ("ferrymq_queue_oldest_message_age_seconds", "Age of the oldest ready message in the queue"),
)


class Families:
    """The families of one scrape, filled across loop turns."""

    def __init__(self) -> None:
        self.gauges = [GaugeMetricFamily(n, h, labels=QL) for n, h in QUEUE_GAUGES]
        self.counters = [CounterMetricFamily(n, h, labels=QL) for n, h, _ in QUEUE_COUNTERS]
        self.waits = HistogramMetricFamily(
            "ferrymq_queue_time_in_queue_seconds",
            f"Time from enqueue to first delivery, one message in {limits.TIME_IN_QUEUE_SAMPLE_MASK + 1}"
            " (queues that delivered any)", labels=QL)
        self.dlq = GaugeMetricFamily(
            "ferrymq_dlq_messages", "Depth of queues that are some queue's dead-letter target",
            labels=QL)
        self.totals: dict[str, int] = dict.fromkeys(("delivered", "acked", "redelivered"), 0)
        self.consumers = 0
        self.queues = 0

    def add_queue(self, vhost: str, q: Queue, now_ms: int) -> None:
        labels = [vhost, q.name]
        ready, unacked = q.message_count, q.unacked_count
        oldest = q.oldest_enqueued_ms()
        age = max(0, now_ms - oldest) / 1000 if oldest else 0.0
        for gauge, value in zip(self.gauges, (ready, unacked, ready + unacked, len(q.consumers), age),
                              strict=True):
            gauge.add_metric(labels, value)
        c = q.counters
        for fam, (_, _, key) in zip(self.counters, QUEUE_COUNTERS, strict=True):
            fam.add_metric(labels, c.get(key, 0))
        for key in self.totals:
            self.totals[key] += c.get(key, 0)
        if q.waits.count:
            self.waits.add_metric(labels, *_buckets(q.waits, 1000))
        self.consumers += len(q.consumers)
        self.queues += 1


def _buckets(h: Histogram, per_second: int) -> tuple[list[tuple[str, float]], float]:
    """Prometheus' cumulative buckets (le in seconds, or in plain units when per_second is 1)."""
    counts, count, total = h.snapshot()
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip(h.bounds, counts, strict=False):
        running += n
        out.append((repr(bound / per_second) if per_second != 1 else str(bound), running))
    out.append(("+Inf", count))
    return out, total / per_second


def _histogram(name: str, help_: str, h: Histogram, per_second: int) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, help_, labels=[])
    fam.add_metric([], *_buckets(h, per_second))
    return fam


def dead_letter_targets(plane: Plane) -> set[tuple[str, str]]:
    """(vhost, queue) of every queue some queue's DLX (and DL routing key, if set) routes to."""
    out: set[tuple[str, str]] = set()
    for vname, vhost in plane.broker.vhosts.items():
        for q in vhost.queues.values():
            dlx = q.args.dead_letter_exchange
            if dlx is None:
                continue
            key = q.args.dead_letter_routing_key
            ex = vhost.exchanges.get(dlx) if dlx else None
            if dlx == "":
                if key and key in vhost.queues:
                    out.add((vname, key))
            elif ex is not None:
                names = ({b.destination for b in ex.bindings()} if key is None
                         else set(vhost.route(ex, key, None)))
                out.update((vname, n) for n in names if n in vhost.queues)
    return out


async def gather(plane: Plane) -> list[Metric]:
    """Every family of one scrape; yields to the loop every few hundred queues."""
    fams = Families()
    now = plane.broker.turn.ms if plane.broker.turn.ms else plane.clock.monotonic_ms()
    now = max(now, plane.clock.monotonic_ms())
    step = limits.METRICS_SCRAPE_YIELD_QUEUES
    seen = 0
    for vname, vhost in list(plane.broker.vhosts.items()):
        for q in list(vhost.queues.values()):
            if not q.deleted:
                fams.add_queue(vname, q, now)
            seen += 1
            if seen % step == 0:
                await asyncio.sleep(0)
    for vname, qname in sorted(dead_letter_targets(plane)):
        dlq = plane.broker.vhosts[vname].queues.get(qname)
        if dlq is not None:
            fams.dlq.add_metric([vname, qname], dlq.message_count)
    return [*_broker_families(plane, fams), *fams.gauges, *fams.counters, fams.waits, fams.dlq,
            *_kafka_families(plane), *_pipeline_families(plane)]


def _broker_families(plane: Plane, fams: Families) -> Iterator[Metric]:
    broker = plane.broker
    for name, help_, value in (
        ("rabbitmq_connections", "Connections currently open", len(plane.amqp.connections)),
        ("rabbitmq_channels", "Channels currently open", len(broker.channels)),
        ("rabbitmq_consumers", "Consumers currently connected", fams.consumers),
        ("rabbitmq_queues", "Queues available", fams.queues),
    ):
        yield GaugeMetricFamily(name, help_, value=value)
    received = broker.messages_received()
    dropped, returned = broker.counters["unroutable_dropped"], broker.counters["unroutable_returned"]
    for key, value, what in (
        ("received", received, "Total number of messages received from publishers"),
        ("routed", max(0, received - dropped - returned),
         "Total number of messages routed to queues or streams"),
        ("unroutable_dropped", dropped, "Total number of messages published as "
         "non-mandatory into an exchange and dropped as unroutable"),
        ("unroutable_returned", returned, "Total number of messages published as "
         "mandatory into an exchange and returned to the publisher as unroutable"),
    ):
        yield _one_counter(f"rabbitmq_global_messages_{key}_total", what, PROTO, value)
    for key, total_key, what in (
        ("delivered", "delivered", "Total number of messages delivered to consumers"),
        ("acknowledged", "acked", "Total number of messages acknowledged by consumers"),
        ("redelivered", "redelivered", "Total number of messages redelivered to consumers"),
    ):
        yield _one_counter(f"rabbitmq_global_messages_{key}_total", what, CLASSIC,
                           fams.totals[total_key])


def _one_counter(name: str, help_: str, labels: dict[str, str], value: int) -> CounterMetricFamily:
    fam = CounterMetricFamily(name, help_, labels=list(labels))
    fam.add_metric(list(labels.values()), value)
    return fam


def _kafka_families(plane: Plane) -> Iterator[Metric]:
    """Consumer-group lag per partition: the topic's end offset minus the group's committed one."""
    fam = GaugeMetricFamily("ferrymq_kafka_consumergroup_lag",
                            "Records of a partition past the group's committed offset",
                            labels=["group", "topic", "partition"])
    if plane.kafka is not None:
        topics = plane.streams.topics
        for gid, group in list(plane.kafka.coordinator.groups.items()):
            for (topic_name, part), (offset, _) in list(group.offsets.items()):
                topic = topics.get(topic_name)
                if topic is None or not 0 <= part < len(topic.logs) or offset < 0:
                    continue
                fam.add_metric([gid, topic_name, str(part)],
                               max(0, topic.logs[part].next_offset - offset))
    yield fam


def _pipeline_families(plane: Plane) -> Iterator[Metric]:
    commit, amqp = plane.commit, plane.amqp
    yield _histogram("ferrymq_fsync_latency_seconds", "Duration of one group commit's fsyncs",
                     commit.fsync_latency, 1_000_000)
    yield _histogram("ferrymq_group_commit_size", "Logs fsynced by one group commit",
                     commit.commit_size, 1)
    yield _histogram("ferrymq_event_loop_lag_seconds",
                     f"How late a {limits.LOOP_LAG_PROBE_MS} ms timer fired (loop stalls)",
                     amqp.loop_lag, 1000)
    yield GaugeMetricFamily("ferrymq_event_loop_lag_max_seconds", "Longest loop stall seen",
                            value=amqp.loop_lag_max_ms / 1000)
    yield CounterMetricFamily("ferrymq_commits_total", "Group commits done",
                              value=commit.counters["commits"])


class _Fixed:
    """A collector that hands prometheus_client families built beforehand."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self._families


def _chunks(fam: Metric) -> Iterator[Metric]:
    samples = fam.samples
    for start in range(0, max(len(samples), 1), RENDER_CHUNK_SAMPLES):
        part = Metric(fam.name, fam.documentation, fam.type, fam.unit)
        part.samples = samples[start:start + RENDER_CHUNK_SAMPLES]
        yield part


def render_chunk(fam: Metric, first: bool) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed([fam]))  # type: ignore[arg-type]
    text = generate_latest(registry)
    if first:
        return text
    return b"".join(line for line in text.splitlines(keepends=True) if not line.startswith(b"#"))


async def render(families: list[Metric]) -> bytes:
    """The exposition text, one chunk of samples per loop turn (a family's header once)."""
    out: list[bytes] = []
    for fam in families:
        for i, part in enumerate(_chunks(fam)):
            out.append(render_chunk(part, i == 0))
            await asyncio.sleep(0)
    return b"".join(out)


async def scrape_body(plane: Plane) -> bytes:
    return await render(await gather(plane))


@routes.get("/metrics")
@routes.get("/metrics/per-object")
async def metrics(request: web.Request) -> web.Response:
    body = await scrape_body(request.app[PLANE])
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
