"""Orchestrates a load-generator run: consumers first, then producers, each in its own OS
process; one shared schedule (start, measured window, stop) on the system-wide monotonic clock;
results gathered into one JSON-able report.

Counting: rates are taken over the measured window only (after ``warmup``), from counters
each process samples at the window's edges. Totals cover the whole run plus the drain: after
the window, producers stop publishing and wait for their outstanding confirms, and consumers
keep consuming until everything published has arrived (or ``drain_seconds`` pass), so
``totals.lost`` is a real loss count, not an in-flight artefact.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
import uuid
from array import array
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ferrymq.bench import consumer as cons
from ferrymq.bench import producer as prod
from ferrymq.bench.amqp_wire import Client

START_DELAY_NS = 200_000_000  # from "all ready" to the first publish


@dataclass
class BenchOptions:
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue: str = ""  # "" = a fresh name per run (deleted afterwards unless keep_queue)
    size: int = 100
    confirm_window: int = 500
    confirm: bool = True
    prefetch: int = 500
    multi_ack: int = 0
    seconds: float = 10.0
    warmup: float = 1.0
    producers: int = 1
    consumers: int = 1
    persistent: bool = False
    rate: float = 0.0  # msgs/s over all producers; 0 = unbounded
    batch: int = 100
    drain_seconds: float = 10.0
    broker_pid: int = 0
    keep_queue: bool = False
    nodelay: bool = True


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy (not idle, not iowait) since boot, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


# -- child processes ------------------------------------------------------------------------

def _producer_main(idx: int, cfg: prod.ProducerConfig, shared: dict[str, Any], ready: Any,
                   go: Any, results: Any) -> None:
    try:
        client, tmpl = prod.connect(cfg)
        ready.put(("producer", idx))
        go.wait()
        sched = prod.Schedule(*shared["schedule"])
        report = prod.produce(cfg, client, tmpl, sched)
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
        failed = shared["failed"]

        def publish_received(n: int) -> None:
            received[idx] = n

        def should_stop(n: int) -> bool:
            received[idx] = n
            if failed.value:
                return True
            return all(done) and sum(received) >= sum(sent)

        report = cons.consume(cfg, client, sched, should_stop, publish_received)
        client.close()
        results.put(("consumer", idx, report))
    except BaseException:
        shared["failed"].value = 1
        ready.put(("consumer", idx))
        results.put(("error", idx, f"consumer {idx}: {traceback.format_exc()}"))


# -- orchestration --------------------------------------------------------------------------

def percentiles_ms(samples: array) -> dict[str, float | int]:
    if not samples:
        return {"samples": 0}
    values = sorted(samples)
    n = len(values)

    def pick(q: float) -> float:
        return values[min(n - 1, int(q * n))] / 1e6

    return {"p50": pick(0.50), "p90": pick(0.90), "p99": pick(0.99), "p999": pick(0.999),
            "max": values[-1] / 1e6, "samples": n}


def run(opts: BenchOptions) -> dict[str, Any]:
    if opts.size < 8:
        raise ValueError("--size must be at least 8 (the body carries the send time)")
    queue = opts.queue or f"ferrymq-bench-{uuid.uuid4().hex[:8]}"
    window = opts.confirm_window if opts.confirm else 0
    ctx = mp.get_context("spawn")  # children start clean: no inherited threads or event loops
    shared = {
        "schedule": ctx.RawArray("q", 3),
        "sent": ctx.RawArray("q", max(1, opts.producers)),
        "producers_done": ctx.RawArray("b", max(1, opts.producers)),
        "received": ctx.RawArray("q", max(1, opts.consumers)),
        "failed": ctx.RawValue("b", 0),
    }
    if opts.producers == 0:
        shared["producers_done"][0] = 1
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    pcfg = prod.ProducerConfig(
        url=opts.url, queue=queue, size=opts.size, window=window, persistent=opts.persistent,
        rate=opts.rate / opts.producers if opts.rate and opts.producers else 0.0,
        batch=opts.batch, drain_seconds=opts.drain_seconds, nodelay=opts.nodelay)
    ccfg = cons.ConsumerConfig(url=opts.url, queue=queue, prefetch=opts.prefetch,
                               durable=opts.persistent, multi_ack=opts.multi_ack,
                               drain_seconds=opts.drain_seconds, nodelay=opts.nodelay)
    procs: list[Any] = []
    load_before = os.getloadavg()
    errors: list[str] = []
    for i in range(opts.consumers):
        procs.append(ctx.Process(target=_consumer_main, args=(i, ccfg, shared, ready, go, results),
                                 name=f"bench-consumer-{i}", daemon=True))
    # Consumers declare the queue and subscribe before any producer publishes.
    for p in procs:
        p.start()
    for _ in range(opts.consumers):
        ready.get(timeout=60)
    for i in range(opts.producers):
        p = ctx.Process(target=_producer_main, args=(i, pcfg, shared, ready, go, results),
                        name=f"bench-producer-{i}", daemon=True)
        p.start()
        procs.append(p)
    for _ in range(opts.producers):
        ready.get(timeout=60)
    start = time.monotonic_ns() + START_DELAY_NS
    w0 = start + int(opts.warmup * 1e9)
    w1 = w0 + int(opts.seconds * 1e9)
    shared["schedule"][:] = [start, w0, w1]
    go.set()
    broker_cpu = None
    prod.sleep_until(w0)
    b0 = proc_cpu_seconds(opts.broker_pid) if opts.broker_pid else 0.0
    m0, t0 = machine_busy_seconds(), time.monotonic_ns()
    prod.sleep_until(w1)
    b1 = proc_cpu_seconds(opts.broker_pid) if opts.broker_pid else 0.0
    m1, t1 = machine_busy_seconds(), time.monotonic_ns()
    machine_cpu = (m1 - m0) / ((t1 - t0) / 1e9)
    if opts.broker_pid:
        broker_cpu = (b1 - b0) / ((t1 - t0) / 1e9)
    producers: dict[int, dict[str, Any]] = {}
    consumers: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + (w1 - time.monotonic_ns()) / 1e9 + 2 * opts.drain_seconds + 30
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
    if not opts.keep_queue:
        _delete_queue(opts.url, queue)
    return _report(opts, queue, window, producers, consumers, broker_cpu, machine_cpu, errors,
                   load_before)


def _delete_queue(url: str, queue: str) -> None:
    from pamqp import commands as c

    try:
        client = Client(url, timeout=10).open()
        client.call(c.Queue.Delete(queue=queue), c.Queue.DeleteOk)
        client.close()
    except Exception:
        pass  # a sink or a broker that is gone: nothing to clean


def _report(opts: BenchOptions, queue: str, window: int, producers: dict[int, dict[str, Any]],
            consumers: dict[int, dict[str, Any]], broker_cpu: float | None, machine_cpu: float,
            errors: list[str], load_before: tuple[float, float, float]) -> dict[str, Any]:
    plist = [producers[i] for i in sorted(producers)]
    clist = [consumers[i] for i in sorted(consumers)]
    samples = array("q")
    for c_ in clist:
        samples.frombytes(c_.pop("latency_ns"))
    secs = opts.seconds

    def rate(items: list[dict[str, Any]], key: str) -> float:
        return sum(item[key] / item["window_seconds"] for item in items)

    published = sum(p["published"] for p in plist)
    consumed = sum(c_["consumed"] for c_ in clist)
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {**asdict(opts), "queue": queue, "confirm_window": window},
        "seconds": secs,
        "published_per_s": rate(plist, "window_published"),
        "confirmed_per_s": rate(plist, "window_confirmed") if window else None,
        "consumed_per_s": rate(clist, "window_consumed") if clist else None,
        "latency_ms": percentiles_ms(samples) if clist else None,
        "cpu": {
            "producers": [round(p["cpu_fraction"], 3) for p in plist],
            "consumers": [round(c_["cpu_fraction"], 3) for c_ in clist],
            "broker": round(broker_cpu, 3) if broker_cpu is not None else None,
            # every core's busy time over the window: minus broker and generators = the rest
            "machine": round(machine_cpu, 3),
            "others": round(machine_cpu - (broker_cpu or 0.0) - sum(p["cpu_fraction"] for p in plist)
                            - sum(c_["cpu_fraction"] for c_ in clist), 3),
        },
        "totals": {
            "published": published,
            "confirmed": sum(p["confirmed"] for p in plist) if window else None,
            "nacked": sum(p["nacked"] for p in plist) if window else None,
            "consumed": consumed if clist else None,
            "lost": (published - consumed) if clist else None,
        },
        "producers": plist,
        "consumers": clist,
        "machine": {"nproc": os.cpu_count(), "loadavg_before": list(load_before),
                    "loadavg_after": list(os.getloadavg())},
        "errors": errors,
    }
    return report
