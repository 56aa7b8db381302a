"""Orchestrates one workload against one target: declare the topology, start consumers then
producers (one OS process each), share one schedule (start, measured window, stop) on the
system-wide monotonic clock, sample depth and CPU while it runs, gather every process's counts
and histograms, measure what is left in the queues, clean up, and build the report.

Counting: rates are taken over the measured window only (after ``warmup``), from counters
each process samples at the window's edges. Totals cover the whole run plus the drain: after
the window, producers stop publishing and wait for their outstanding confirms, and consumers
keep consuming until everything published has completed (or ``drain_seconds`` pass). What is
still queued then is counted as ``left``, so ``lost = expected - completed - left`` is a real
loss count, not an in-flight artefact.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.bench import consumer as cons
from ferrymq.bench import producer as prod
from ferrymq.bench.monitor import Monitor, Sample
from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds
from ferrymq.bench.report import build_report
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Topology, Workload
from ferrymq.client.connection import Client

START_DELAY_NS = 200_000_000  # from "all ready" to the first publish
READY_TIMEOUT_S = 60.0


# -- child processes ------------------------------------------------------------------------

def _producer_main(idx: int, cfg: prod.ProducerConfig, shared: dict[str, Any], live: Any, ready: Any,
                   go: Any, results: Any) -> None:
    try:
        client, tmpl = prod.connect(cfg)
        ready.put(("producer", idx))
        go.wait()
        sched = prod.Schedule(*shared["schedule"])
        report = prod.produce(cfg, client, tmpl, sched, live)
        shared["sent"][idx] = report["published"]
        shared["producers_done"][idx] = 1
        client.close()
        results.put(("producer", idx, report))
    except BaseException:
        shared["producers_done"][idx] = 1
        shared["failed"].value = 1
        ready.put(("producer", idx))
        results.put(("error", idx, f"producer {idx}: {traceback.format_exc()}"))


def _consumer_main(idx: int, cfg: cons.ConsumerConfig, shared: dict[str, Any], ready: Any,
                   go: Any, results: Any) -> None:
    try:
        client = cons.connect(cfg)
        ready.put(("consumer", idx))
        go.wait()
        sched = prod.Schedule(*shared["schedule"])
        sent, done, received = shared["sent"], shared["producers_done"], shared["received"]
        weights, failed = shared["weights"], shared["failed"]

        def publish_received(n: int) -> None:
            received[idx] = n

        def should_stop(n: int) -> bool:
            received[idx] = n
            if failed.value:
                return True
            return all(done) and sum(received) >= sum(s * w for s, w in zip(sent, weights))

        report = cons.consume(cfg, client, sched, should_stop, publish_received)
        client.close()
        results.put(("consumer", idx, report))
    except BaseException:
        shared["failed"].value = 1
        ready.put(("consumer", idx))
        results.put(("error", idx, f"consumer {idx}: {traceback.format_exc()}"))


# -- orchestration --------------------------------------------------------------------------

def declare(url: str, topo: Topology) -> None:
    client = Client(url, timeout=30).open()
    try:
        if topo.dlq:
            client.declare_queue(topo.dlq, topo.durable)
        for q in topo.queues:
            client.declare_queue(q, topo.durable, topo.queue_args or None)
        if topo.exchange:
            client.declare_exchange(topo.exchange, topo.exchange_type, topo.durable)
            for q in topo.queues:
                client.bind(q, topo.exchange)
    finally:
        client.close()


def depths(url: str, queues: list[str]) -> dict[str, int]:
    """Ready messages per queue (passive declare); -1 where the broker would not say."""
    out: dict[str, int] = {}
    try:
        client = Client(url, timeout=10).open()
    except Exception:
        return {q: -1 for q in queues}
    try:
        for q in queues:
            try:
                out[q] = client.declare_queue(q, False, passive=True).message_count or 0
            except Exception:
                out[q] = -1
                client.close()
                client = Client(url, timeout=10).open()
    finally:
        client.close()
    return out


def cleanup(url: str, topo: Topology) -> None:
    try:
        client = Client(url, timeout=10).open()
        for q in (*topo.queues, *([topo.dlq] if topo.dlq else [])):
            client.delete_queue(q)
        if topo.exchange:
            client.delete_exchange(topo.exchange)
        client.close()
    except Exception:
        pass  # a broker that is gone: nothing to clean


def effective(w: Workload, target: Target) -> Workload:
    """The sink only echoes default-exchange publishes to consumers: other shapes publish only."""
    if target.kind == "sink" and (w.kind in ("fanout", "stream") or w.fail_rate > 0):
        return Workload.from_dict({**w.to_dict(), "consumers": 0})
    return w


@dataclass
class _Fleet:
    """The generator processes of one run and what they share (spawned: children start clean,
    with no inherited threads or event loops)."""
    target: Target
    w: Workload
    topo: Topology
    ctx: Any = field(default_factory=lambda: mp.get_context("spawn"))
    procs: list[Any] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        ctx, topo = self.ctx, self.topo
        n_prod, n_cons = topo.producers, topo.consumers
        stream = self.w.kind == "stream"
        self.shared = {
            "schedule": ctx.RawArray("q", 4),
            "sent": ctx.RawArray("q", max(1, n_prod)),
            "producers_done": ctx.RawArray("b", max(1, n_prod)),
            "received": ctx.RawArray("q", max(1, n_cons)),
            "weights": ctx.RawArray("q", [topo.copies(i, stream) for i in range(max(1, n_prod))]),
            "failed": ctx.RawValue("b", 0),
        }
        if n_prod == 0:
            self.shared["producers_done"][0] = 1
        self.live = [ctx.RawValue("q", 0) for _ in range(n_prod)]
        self.ready, self.results, self.go = ctx.Queue(), ctx.Queue(), ctx.Event()

    def spawn(self, name: str, main: Callable[..., None], args: tuple[Any, ...]) -> None:
        p = self.ctx.Process(target=main, args=args, name=f"bench-{name}", daemon=True)
        p.start()
        self.procs.append(p)
        self.names.append(name)

    def start_consumers(self) -> None:
        """Consumers subscribe before any producer publishes."""
        w, topo = self.w, self.topo
        for j in range(topo.consumers):
            cfg = cons.ConsumerConfig(
                url=self.target.url, queue=topo.consumer_queue(j), prefetch=w.prefetch,
                multi_ack=w.multi_ack, drain_seconds=w.drain_seconds, nodelay=w.nodelay,
                consume_args=topo.consume_args, fail_rate=w.fail_rate if w.kind == "task" else 0.0,
                max_retries=w.max_retries, size=w.size, persistent=w.persistent, work_us=w.work_us,
                seed=w.seed * 1000 + j)
            self.spawn(f"consumer-{j}", _consumer_main,
                       (j, cfg, self.shared, self.ready, self.go, self.results))
        for _ in range(topo.consumers):
            self.ready.get(timeout=READY_TIMEOUT_S)

    def start_producers(self) -> None:
        w, pacer = self.w, self.w.pacer()
        for i in range(self.topo.producers):
            exchange, key = self.topo.producer_route(i)
            cfg = prod.ProducerConfig(
                url=self.target.url, routing_key=key, exchange=exchange, size=w.size,
                window=w.confirm_window if w.confirm else 0, persistent=w.persistent, pacer=pacer,
                batch=w.batch, drain_seconds=w.drain_seconds, nodelay=w.nodelay)
            self.spawn(f"producer-{i}", _producer_main,
                       (i, cfg, self.shared, self.live[i], self.ready, self.go, self.results))
        for _ in range(self.topo.producers):
            self.ready.get(timeout=READY_TIMEOUT_S)

    def counters(self) -> tuple[int, int, int]:
        """(published, expected deliveries, completed) from the children's shared counters."""
        sent = [v.value for v in self.live]
        weights = self.shared["weights"]
        return sum(sent), sum(s * wt for s, wt in zip(sent, weights)), sum(self.shared["received"])

    def gather(self) -> tuple[dict[int, Any], dict[int, Any], list[str]]:
        """Every child's report (or error), then the children joined."""
        producers: dict[int, dict[str, Any]] = {}
        consumers: dict[int, dict[str, Any]] = {}
        errors: list[str] = []
        deadline = time.monotonic() + 2 * self.w.drain_seconds + 30
        while len(producers) + len(consumers) + len(errors) < len(self.procs):
            try:
                kind, idx, payload = self.results.get(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # queue.Empty: a child hung
                errors.append("timed out waiting for generator processes")
                break
            if kind == "error":
                errors.append(payload)
            else:
                (producers if kind == "producer" else consumers)[idx] = payload
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join(5)
        return producers, consumers, errors


def _measure(fleet: _Fleet,
             on_sample: Callable[[Sample], None] | None) -> tuple[Monitor, float | None, float]:
    """Publish the schedule, let the children go and sample CPU over the measured window:
    (monitor, broker cores, machine cores)."""
    w, target = fleet.w, fleet.target
    iv_s = w.timeline_interval()
    start = time.monotonic_ns() + START_DELAY_NS
    w0 = start + int(w.warmup * 1e9)
    w1 = w0 + int(w.seconds * 1e9)
    fleet.shared["schedule"][:] = [start, w0, w1, int(iv_s * 1e9)]
    pids = {"broker": target.broker_pid} if target.broker_pid else {}
    pids.update({name: p.pid for name, p in zip(fleet.names, fleet.procs)})
    monitor = Monitor(None if target.kind == "sink" else target.url, list(fleet.topo.queues), pids,
                      fleet.counters, w0, iv_s, on_sample).start()
    fleet.go.set()
    prod.sleep_until(w0)
    b0 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m0, t0 = machine_busy_seconds(), time.monotonic_ns()
    prod.sleep_until(w1)
    b1 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m1, t1 = machine_busy_seconds(), time.monotonic_ns()
    secs = (t1 - t0) / 1e9
    return monitor, (b1 - b0) / secs if target.broker_pid else None, (m1 - m0) / secs


def run_workload(target: Target, workload: Workload, *, keep_queues: bool = False,
                 on_sample: Callable[[Sample], None] | None = None) -> dict[str, Any]:
    """Run ``workload`` against ``target`` once; returns the report (see report.py)."""
    if target.kind == "kafka":
        from ferrymq.bench.kafka_load import run_stream

        return run_stream(target, workload)
    w = effective(workload, target)
    topo = Topology.plan(w, uuid.uuid4().hex[:8])
    declare(target.url, topo)
    fleet = _Fleet(target, w, topo)
    load_before = os.getloadavg()
    try:
        fleet.start_consumers()
        fleet.start_producers()
    except Exception:
        for p in fleet.procs:
            p.kill()
        cleanup(target.url, topo)
        raise
    monitor, broker_cpu, machine_cpu = _measure(fleet, on_sample)
    producers, consumers, errors = fleet.gather()
    samples = monitor.stop()
    errors.extend(monitor.errors)
    left: dict[str, int] = {}
    if target.kind != "sink" and topo.consumers:
        left = depths(target.url, [*topo.queues, *([topo.dlq] if topo.dlq else [])])
    if not keep_queues:
        cleanup(target.url, topo)
    return build_report(
        target=target, workload=w, topology=topo, producers=[producers[i] for i in sorted(producers)],
        consumers=[consumers[i] for i in sorted(consumers)], samples=samples, broker_cpu=broker_cpu,
        machine_cpu=machine_cpu, errors=errors, left=left, load_before=load_before,
        interval_s=w.timeline_interval())
