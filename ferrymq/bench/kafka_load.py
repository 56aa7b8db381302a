"""Kafka load: the one place the generator makes Kafka traffic, with confluent-kafka (librdkafka).

librdkafka because the generator must be faster than the broker it measures, and it batches and
pipelines as Kafka users' producers do. Two shapes, one set of client settings:

- counted (``produce_count`` / ``consume_count``): N records as fast as the client allows, then N
  read back from the start; ``scripts/kafka_perf.py`` and ``scripts/kafka_bench_compare.py``;
- timed (``run_stream``): the ``stream`` workload (``--target kafka://host:port``) on the shared
  schedule, producers and consumers in their own processes. Every record's value starts with its
  send time (monotonic ns), so consumers measure end-to-end latency; delivery reports give
  publish-to-ack latency. The report has the shape of ``run.run_workload``: ``queues`` is the
  partition count of one topic, and each consumer reads the whole log.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import struct
import time
import uuid
from typing import Any

from ferrymq.bench.histogram import IntervalHistograms
from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds
from ferrymq.bench.producer import cpu_report, cpu_times, sleep_until
from ferrymq.bench.report import build_report
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Topology, Workload

START_DELAY_NS = 1_500_000_000  # clients connect and fetch metadata before the first record
STAMP = struct.Struct(">Q")
# librdkafka stops fetching when 100k records are queued locally and waits fetch.queue.backoff.ms
# (1 s by default) before the next fetch: the client, not the broker, would cap a tuned read.
TUNED_CONSUMER = {"fetch.queue.backoff.ms": 0, "queued.min.messages": 1_000_000}


def producer_config(bootstrap: str, acks: str = "1", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """acks=1, linger 5 ms, a deep local queue, no idempotence: a producer tuned for throughput."""
    return {"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "enable.idempotence": False,
            "queue.buffering.max.messages": 1_000_000, **(extra or {})}


def consumer_config(bootstrap: str, tuned: bool = False,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fresh group, no offset commits: every run reads the log from where it is assigned."""
    return {"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False, **(TUNED_CONSUMER if tuned else {}), **(extra or {})}


def create_topic(bootstrap: str, topic: str, partitions: int = 1, timeout_s: float = 15) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        fut.result(timeout_s)


def delete_topic(bootstrap: str, topic: str, timeout_s: float = 15) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.delete_topics([topic]).values():
        fut.result(timeout_s)


def produce_count(bootstrap: str, topic: str, n: int, size: int) -> float:
    """Produce n records of ``size`` random bytes to partition 0; seconds until all are acked."""
    from confluent_kafka import Producer

    p = Producer(producer_config(bootstrap, "1", {"batch.size": 1_000_000,
                                                  "queue.buffering.max.kbytes": 1_048_576}))
    value = os.urandom(size)
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value, partition=0)
                break
            except BufferError:
                p.poll(0.001)
    assert p.flush(120) == 0
    return time.perf_counter() - t0


def consume_count(bootstrap: str, topic: str, n: int, tuned: bool,
                  extra: dict[str, Any] | None = None) -> float:
    """Read n records of partition 0 from the start; seconds from the first record to the last."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    c = Consumer(consumer_config(bootstrap, tuned, extra))
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    got, t0 = 0, None
    while got < n:
        msgs = c.consume(num_messages=10_000, timeout=1)
        if t0 is None and msgs:
            t0 = time.perf_counter()
        got += len(msgs)
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    c.close()
    return elapsed


# --- timed: the stream workload -------------------------------------------------------------


class _Acks:
    """Delivery reports of one timed producer: counts and publish-to-ack latency."""

    def __init__(self, w0: int, w1: int, iv: int) -> None:
        self.w0, self.w1 = w0, w1
        self.latency = IntervalHistograms(w0, iv)
        self.acked = self.failed = self.acked_w = 0

    def __call__(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            return
        now = time.monotonic_ns()
        sent = STAMP.unpack_from(msg.value())[0]
        self.acked += 1
        if self.w0 <= now < self.w1:
            self.acked_w += 1
        self.latency.record_many(sent, (now - sent) // 1000, 1)


def _produce_burst(p: Any, topic: str, pad: bytes, acks: _Acks, now: int, w0: int, iv: int,
                   timeline: dict[int, int]) -> tuple[int, int]:
    """Up to 1000 stamped records; (sent, sent in the window)."""
    sent = 0
    for _ in range(1000):
        try:
            p.produce(topic, STAMP.pack(time.monotonic_ns()) + pad, on_delivery=acks)
        except BufferError:
            p.poll(0.001)
            break
        sent += 1
    if sent:
        k = (now - w0) // iv
        timeline[k] = timeline.get(k, 0) + sent
    return sent, sent if now >= w0 else 0


def _producer_main(idx: int, bootstrap: str, topic: str, w: dict[str, Any], sched: Any, results: Any) -> None:
    from confluent_kafka import Producer

    start, w0, w1, iv = list(sched)
    confirm = w["confirm"]
    p = Producer(producer_config(bootstrap, "1" if confirm else "0", {"batch.num.messages": 10_000}))
    pad = b"\x00" * max(0, w["size"] - STAMP.size)
    acks, timeline = _Acks(w0, w1, iv), dict[int, int]()
    rate, sent, sent_w, cpu0 = w["rate"], 0, 0, None
    sleep_until(start)
    while (now := time.monotonic_ns()) < w1:
        if cpu0 is None and now >= w0:
            cpu0 = cpu_times()
        if rate and sent >= (now - start) / 1e9 * rate:
            time.sleep(0.0005)
        else:
            n, n_w = _produce_burst(p, topic, pad, acks, now, w0, iv, timeline)
            sent, sent_w = sent + n, sent_w + n_w
        p.poll(0)
    cpu1 = cpu_times()
    p.flush(30)
    wall = (w1 - w0) / 1e9
    results.put(("producer", idx, {
        "published": sent, "confirmed": acks.acked if confirm else sent, "nacked": acks.failed,
        "unconfirmed": 0, "window_seconds": wall, "window_published": sent_w,
        "window_confirmed": acks.acked_w if confirm else sent_w,
        **cpu_report(cpu0 or cpu1, cpu1, wall), "timeline": timeline,
        "confirm_latency": acks.latency.encode()}))


def _consumer_main(idx: int, bootstrap: str, topic: str, partitions: int, w: dict[str, Any], sched: Any,
                   expected: Any, results: Any) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    _start, w0, w1, iv = list(sched)
    c = Consumer(consumer_config(bootstrap, extra={"fetch.wait.max.ms": 50}))
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    latency = IntervalHistograms(w0, iv)
    timeline: dict[int, int] = {}
    received = in_window = 0
    drain_end = w1 + int(w["drain_seconds"] * 1e9)
    cpu0 = cpu1 = None
    while True:
        now = time.monotonic_ns()
        if cpu0 is None and now >= w0:
            cpu0 = cpu_times()
        if cpu1 is None and now >= w1:
            cpu1 = cpu_times()
        if now >= w1 and (received >= expected.value > 0 or now >= drain_end):
            break
        batch = c.consume(10_000, 0.05)
        now = time.monotonic_ns()
        stamps = [STAMP.unpack_from(m.value())[0] for m in batch if m.error() is None]
        received += len(stamps)
        if w0 <= now < w1:
            in_window += len(stamps)
        if stamps:
            latency.record(now, stamps)
            k = (now - w0) // iv
            timeline[k] = timeline.get(k, 0) + len(stamps)
    c.close()
    wall = (w1 - w0) / 1e9
    results.put(("consumer", idx, {
        "consumed": received, "completed": received, "retried": 0, "dead_lettered": 0,
        "window_seconds": wall, "window_consumed": in_window,
        **cpu_report(cpu0 or cpu_times(), cpu1 or cpu_times(), wall), "timeline": timeline,
        "latency": latency.encode()}))


def _gather(results: Any, topo: Topology, expected: Any, deadline: float) -> tuple[dict[int, Any],
                                                                                   dict[int, Any], list[str]]:
    """Producers first (their totals tell consumers when they are done), then consumers."""
    producers: dict[int, dict[str, Any]] = {}
    consumers: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    while len(producers) < topo.producers:
        kind, idx, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
        (producers if kind == "producer" else consumers)[idx] = payload
    expected.value = sum(p["published"] for p in producers.values())  # each consumer reads it all
    while len(consumers) < topo.consumers:
        try:
            kind, idx, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # queue.Empty: a consumer hung
            errors.append("timed out waiting for Kafka consumers")
            break
        consumers[idx] = payload
    return producers, consumers, errors


def run_stream(target: Target, workload: Workload) -> dict[str, Any]:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError as exc:  # pragma: no cover - a test dependency, optional for users
        raise RuntimeError("the Kafka stream workload needs confluent-kafka "
                           "(pip install confluent-kafka)") from exc
    w, bootstrap = workload, target.url.removeprefix("kafka://").rstrip("/")
    partitions = max(1, w.queues)
    # one topic of ``queues`` partitions, read whole by every consumer: one "queue" in the books
    topo = Topology.plan(Workload.from_dict({**w.to_dict(), "queues": 1}), uuid.uuid4().hex[:8])
    topic = topo.queues[0].replace("-q0", "")
    create_topic(bootstrap, topic, partitions)
    ctx, iv_s = mp.get_context("spawn"), w.timeline_interval()
    start = time.monotonic_ns() + START_DELAY_NS
    w0 = start + int(w.warmup * 1e9)
    w1 = w0 + int(w.seconds * 1e9)
    sched = ctx.RawArray("q", [start, w0, w1, int(iv_s * 1e9)])
    expected, results = ctx.RawValue("q", 0), ctx.Queue()
    wd, load_before = w.to_dict(), os.getloadavg()
    procs = [ctx.Process(target=_consumer_main, args=(j, bootstrap, topic, partitions, wd, sched, expected,
                                                      results), daemon=True) for j in range(topo.consumers)]
    procs += [ctx.Process(target=_producer_main, args=(i, bootstrap, topic, wd, sched, results), daemon=True)
              for i in range(topo.producers)]
    for p in procs:
        p.start()
    broker_cpu, machine_cpu = _window_cpu(target.broker_pid, w0, w1)
    deadline = time.monotonic() + 2 * w.drain_seconds + 60
    producers, consumers, errors = _gather(results, topo, expected, deadline)
    for p in procs:
        p.join(5)
    delete_topic(bootstrap, topic)
    return build_report(
        target=target, workload=w, topology=topo, producers=[producers[i] for i in sorted(producers)],
        consumers=[consumers[i] for i in sorted(consumers)], samples=[], broker_cpu=broker_cpu,
        machine_cpu=machine_cpu, errors=errors, left={}, load_before=load_before, interval_s=iv_s)


def _window_cpu(broker_pid: int, w0: int, w1: int) -> tuple[float | None, float]:
    """(broker cores, machine cores) over the measured window [w0, w1)."""
    sleep_until(w0)
    b0 = proc_cpu_seconds(broker_pid) if broker_pid else 0.0
    m0, t0 = machine_busy_seconds(), time.monotonic_ns()
    sleep_until(w1)
    b1 = proc_cpu_seconds(broker_pid) if broker_pid else 0.0
    m1, t1 = machine_busy_seconds(), time.monotonic_ns()
    secs = (t1 - t0) / 1e9
    return ((b1 - b0) / secs if broker_pid else None), (m1 - m0) / secs
