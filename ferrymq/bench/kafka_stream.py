"""The ``stream`` workload over the Kafka protocol (``--target kafka://host:port``): producers Produce,
consumers Fetch every partition from the earliest offset, each in its own process.

The clients are confluent-kafka (librdkafka): the generator must be faster than the broker it
measures, and librdkafka batches and pipelines as Kafka users' producers do. Every record's value
starts with its send time (monotonic ns), so consumers measure end-to-end latency; delivery reports
give publish-to-ack latency. The report has the shape of ``run.run_workload`` (``report.build_report``):
``queues`` is the partition count of one topic, and each consumer reads the whole log.
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
_STAMP = struct.Struct(">Q")


def _bootstrap(target: Target) -> str:
    return target.url.removeprefix("kafka://").rstrip("/")


def _producer_main(idx: int, bootstrap: str, topic: str, w: dict[str, Any], sched: Any, results: Any) -> None:
    from confluent_kafka import Producer

    start, w0, w1, iv = list(sched)
    acks = "1" if w["confirm"] else "0"
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "enable.idempotence": False,
                  "queue.buffering.max.messages": 1_000_000, "batch.num.messages": 10_000})
    pad = b"\x00" * max(0, w["size"] - _STAMP.size)
    confirm = IntervalHistograms(w0, iv)
    timeline: dict[int, int] = {}
    counts = {"acked": 0, "failed": 0, "acked_w": 0}

    def report(err: Any, msg: Any) -> None:
        if err is not None:
            counts["failed"] += 1
            return
        now = time.monotonic_ns()
        sent = _STAMP.unpack_from(msg.value())[0]
        counts["acked"] += 1
        if w0 <= now < w1:
            counts["acked_w"] += 1
        confirm.record_many(sent, (now - sent) // 1000, 1)

    rate = w["rate"]
    sent = sent_w = 0
    sleep_until(start)
    cpu0 = None
    while True:
        now = time.monotonic_ns()
        if now >= w1:
            break
        if cpu0 is None and now >= w0:
            cpu0 = cpu_times()
        if rate and sent >= (now - start) / 1e9 * rate:
            time.sleep(0.0005)
            p.poll(0)
            continue
        for _ in range(1000):
            try:
                p.produce(topic, _STAMP.pack(time.monotonic_ns()) + pad, on_delivery=report)
            except BufferError:
                p.poll(0.001)
                break
            sent += 1
            if now >= w0:
                sent_w += 1
            k = (now - w0) // iv
            timeline[k] = timeline.get(k, 0) + 1
        p.poll(0)
    cpu1 = cpu_times()
    p.flush(30)
    wall = (w1 - w0) / 1e9
    results.put(("producer", idx, {
        "published": sent, "confirmed": counts["acked"] if acks == "1" else sent, "nacked": counts["failed"],
        "unconfirmed": 0, "window_seconds": wall, "window_published": sent_w,
        "window_confirmed": counts["acked_w"] if acks == "1" else sent_w,
        **cpu_report(cpu0 or cpu1, cpu1, wall), "timeline": timeline, "confirm_latency": confirm.encode()}))


def _consumer_main(idx: int, bootstrap: str, topic: str, partitions: int, w: dict[str, Any], sched: Any,
                   expected: Any, results: Any) -> None:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    _start, w0, w1, iv = list(sched)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 50})
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
        stamps = [_STAMP.unpack_from(m.value())[0] for m in batch if m.error() is None]
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


def run_stream(target: Target, workload: Workload) -> dict[str, Any]:
    try:
        from confluent_kafka.admin import AdminClient, NewTopic
    except ImportError as exc:  # pragma: no cover - a test dependency, optional for users
        raise RuntimeError("the Kafka stream workload needs confluent-kafka "
                           "(pip install confluent-kafka)") from exc
    w = workload
    bootstrap = _bootstrap(target)
    partitions = max(1, w.queues)
    # one topic of ``queues`` partitions, read whole by every consumer: one "queue" in the books
    topo = Topology.plan(Workload.from_dict({**w.to_dict(), "queues": 1}), uuid.uuid4().hex[:8])
    topic = topo.queues[0].replace("-q0", "")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for fut in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        fut.result(15)
    ctx = mp.get_context("spawn")
    iv_s = w.timeline_interval()
    start = time.monotonic_ns() + START_DELAY_NS
    w0 = start + int(w.warmup * 1e9)
    w1 = w0 + int(w.seconds * 1e9)
    sched = ctx.RawArray("q", [start, w0, w1, int(iv_s * 1e9)])
    expected = ctx.RawValue("q", 0)
    results = ctx.Queue()
    wd = w.to_dict()
    load_before = os.getloadavg()
    procs = [ctx.Process(target=_consumer_main, args=(j, bootstrap, topic, partitions, wd, sched, expected,
                                                      results), daemon=True) for j in range(topo.consumers)]
    procs += [ctx.Process(target=_producer_main, args=(i, bootstrap, topic, wd, sched, results), daemon=True)
              for i in range(topo.producers)]
    for p in procs:
        p.start()
    sleep_until(w0)
    b0 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m0, t0 = machine_busy_seconds(), time.monotonic_ns()
    sleep_until(w1)
    b1 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m1, t1 = machine_busy_seconds(), time.monotonic_ns()
    producers: dict[int, dict[str, Any]] = {}
    consumers: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    deadline = time.monotonic() + 2 * w.drain_seconds + 60
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
    for p in procs:
        p.join(5)
    for fut in admin.delete_topics([topic]).values():
        fut.result(15)
    secs = (t1 - t0) / 1e9
    return build_report(
        target=target, workload=w, topology=topo, producers=[producers[i] for i in sorted(producers)],
        consumers=[consumers[i] for i in sorted(consumers)], samples=[],
        broker_cpu=(b1 - b0) / secs if target.broker_pid else None, machine_cpu=(m1 - m0) / secs,
        errors=errors, left={}, load_before=load_before, interval_s=iv_s)
