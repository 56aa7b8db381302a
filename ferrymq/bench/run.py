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
from typing import Any

from ferrymq.bench import consumer as cons
from ferrymq.bench import producer as prod
from ferrymq.bench.amqp_wire import Client
from ferrymq.bench.monitor import Monitor, Sample
from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds
from ferrymq.bench.report import build_report
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Topology, Workload

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


def run_workload(target: Target, workload: Workload, *, keep_queues: bool = False,
                 on_sample: Callable[[Sample], None] | None = None) -> dict[str, Any]:
    """Run ``workload`` against ``target`` once; returns the report (see report.py)."""
    if target.kind == "kafka":
        from ferrymq.bench.kafka_stream import run_stream

        return run_stream(target, workload)
    w = effective(workload, target)
    topo = Topology.plan(w, uuid.uuid4().hex[:8])
    stream = w.kind == "stream"
    declare(target.url, topo)
    ctx = mp.get_context("spawn")  # children start clean: no inherited threads or event loops
    n_prod, n_cons = topo.producers, topo.consumers
    shared = {
        "schedule": ctx.RawArray("q", 4),
        "sent": ctx.RawArray("q", max(1, n_prod)),
        "producers_done": ctx.RawArray("b", max(1, n_prod)),
        "received": ctx.RawArray("q", max(1, n_cons)),
        "weights": ctx.RawArray("q", [topo.copies(i, stream) for i in range(max(1, n_prod))]),
        "failed": ctx.RawValue("b", 0),
    }
    if n_prod == 0:
        shared["producers_done"][0] = 1
    live = [ctx.RawValue("q", 0) for _ in range(n_prod)]
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    window = w.confirm_window if w.confirm else 0
    pacer = w.pacer()
    procs: list[Any] = []
    names: list[str] = []
    load_before = os.getloadavg()
    errors: list[str] = []
    for j in range(n_cons):
        ccfg = cons.ConsumerConfig(
            url=target.url, queue=topo.consumer_queue(j), prefetch=w.prefetch, multi_ack=w.multi_ack,
            drain_seconds=w.drain_seconds, nodelay=w.nodelay, consume_args=topo.consume_args,
            fail_rate=w.fail_rate if w.kind == "task" else 0.0, max_retries=w.max_retries, size=w.size,
            persistent=w.persistent, work_us=w.work_us, seed=w.seed * 1000 + j)
        procs.append(ctx.Process(target=_consumer_main, args=(j, ccfg, shared, ready, go, results),
                                 name=f"bench-consumer-{j}", daemon=True))
        names.append(f"consumer-{j}")
    # Consumers subscribe before any producer publishes.
    for p in procs:
        p.start()
    try:
        for _ in range(n_cons):
            ready.get(timeout=READY_TIMEOUT_S)
        for i in range(n_prod):
            exchange, key = topo.producer_route(i)
            pcfg = prod.ProducerConfig(
                url=target.url, routing_key=key, exchange=exchange, size=w.size, window=window,
                persistent=w.persistent, pacer=pacer, batch=w.batch, drain_seconds=w.drain_seconds,
                nodelay=w.nodelay)
            p = ctx.Process(target=_producer_main, args=(i, pcfg, shared, live[i], ready, go, results),
                            name=f"bench-producer-{i}", daemon=True)
            p.start()
            procs.append(p)
            names.append(f"producer-{i}")
        for _ in range(n_prod):
            ready.get(timeout=READY_TIMEOUT_S)
    except Exception:
        for p in procs:
            p.kill()
        cleanup(target.url, topo)
        raise
    iv_s = w.timeline_interval()
    start = time.monotonic_ns() + START_DELAY_NS
    w0 = start + int(w.warmup * 1e9)
    w1 = w0 + int(w.seconds * 1e9)
    shared["schedule"][:] = [start, w0, w1, int(iv_s * 1e9)]
    pids = {"broker": target.broker_pid} if target.broker_pid else {}
    pids.update({name: p.pid for name, p in zip(names, procs)})
    weights = list(shared["weights"])

    def counters() -> tuple[int, int, int]:
        sent = [v.value for v in live]
        return sum(sent), sum(s * wt for s, wt in zip(sent, weights)), sum(shared["received"])

    monitor = Monitor(None if target.kind == "sink" else target.url, list(topo.queues), pids, counters,
                      w0, iv_s, on_sample).start()
    go.set()
    prod.sleep_until(w0)
    b0 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m0, t0 = machine_busy_seconds(), time.monotonic_ns()
    prod.sleep_until(w1)
    b1 = proc_cpu_seconds(target.broker_pid) if target.broker_pid else 0.0
    m1, t1 = machine_busy_seconds(), time.monotonic_ns()
    machine_cpu = (m1 - m0) / ((t1 - t0) / 1e9)
    broker_cpu = (b1 - b0) / ((t1 - t0) / 1e9) if target.broker_pid else None
    producers: dict[int, dict[str, Any]] = {}
    consumers: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + 2 * w.drain_seconds + 30
    while len(producers) + len(consumers) + len(errors) < len(procs):
        try:
            kind, idx, payload = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except Exception:  # queue.Empty: a child hung
            errors.append("timed out waiting for generator processes")
            break
        if kind == "producer":
            producers[idx] = payload
        elif kind == "consumer":
            consumers[idx] = payload
        else:
            errors.append(payload)
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.terminate()
            p.join(5)
    samples = monitor.stop()
    errors.extend(monitor.errors)
    left: dict[str, int] = {}
    if target.kind != "sink" and n_cons:
        left = depths(target.url, [*topo.queues, *([topo.dlq] if topo.dlq else [])])
    if not keep_queues:
        cleanup(target.url, topo)
    return build_report(
        target=target, workload=w, topology=topo, producers=[producers[i] for i in sorted(producers)],
        consumers=[consumers[i] for i in sorted(consumers)], samples=samples, broker_cpu=broker_cpu,
        machine_cpu=machine_cpu, errors=errors, left=left, load_before=load_before, interval_s=iv_s)
