"""The three job workloads, each run against one broker URL with one library. Every figure comes
with the load average read just before it (what `uptime` prints) and the CPU the broker used."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from ferrymq.bench.histogram import new_histogram, summary_ms
from ferrymq.bench.jobs import probe, pyspy, sampler
from ferrymq.bench.jobs.libs import Lib
from ferrymq.bench.jobs.workers import Workers, spawn
from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds, rss_kib
from ferrymq.bench.run import depths
from ferrymq.client.connection import Client as AmqpClient

QUEUED_TIMEOUT_S = 60.0  # unconfirmed publishes still landing in the queue
WARM_JOBS = 20           # latency: jobs that prove the workers consume before the paced phase
POLL_S = 0.005


def loadavg() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _wait(pred: Any, timeout_s: float, what: str, workers: Workers | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if workers is not None and not workers.alive():
            raise RuntimeError(f"workers exited ({workers.proc.returncode}) while {what}:\n{workers.tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out ({timeout_s:.0f} s) {what}")
        time.sleep(POLL_S)


def _depth(url: str, queue: str) -> int:
    return depths(url, [queue])[queue]


def drop_queues(url: str, *queues: str) -> None:
    try:
        client = AmqpClient(url, timeout=10).open()
        for q in queues:
            client.delete_queue(q)
        client.close()
    except Exception:
        pass  # a broker that is gone has nothing left to clean


def _enqueue(lib: Lib, url: str, queue: str, n: int) -> dict[str, Any]:
    load = loadavg()
    client = lib.connect(url, queue)
    t0 = time.monotonic()
    client.send_noop(n)
    seconds = time.monotonic() - t0
    client.close()
    _wait(lambda: _depth(url, queue) >= n, QUEUED_TIMEOUT_S, f"for {n} jobs in {queue}")
    return {"enqueue_jobs_per_s": round(n / seconds), "enqueue_s": round(seconds, 3),
            "enqueue_how": client.how, "enqueue_load": load}


def drain(lib: Lib, url: str, n: int, work: Path, broker_pid: int, concurrency: int = 0,
          timeout_s: float = 300.0, profile: bool = False) -> dict[str, Any]:
    """Workload A: enqueue n no-op jobs, then start the workers and time until all have run.
    ``profile``: py-spy records the workers (else they sample their own stacks, ``sampler``); the
    figures then carry the profiler's cost."""
    queue = f"jobbench-{lib.name}-a"
    out = {"workload": "drain", "jobs": n, **_enqueue(lib, url, queue, n), "drain_load": loadavg()}
    cpu0, busy0 = proc_cpu_seconds(broker_pid), machine_busy_seconds()
    spawned = time.monotonic_ns()
    in_process = profile and pyspy.binary() is None
    workers = spawn(lib.worker_argv(queue, concurrency), url, queue, work,
                    {sampler.SAMPLE_ENV: str(work)} if in_process else None)
    spy = None
    try:
        _wait(lambda: probe.progress(work).done > 0, timeout_s, "for the first job", workers)
        first_done, wcpu0 = probe.progress(work).done, workers.cpu_seconds()
        if profile and not in_process:  # attached once jobs run: the profile leaves out start-up
            spy = pyspy.attach(workers.proc.pid, work)
        _wait(lambda: probe.progress(work).done >= n, timeout_s, f"draining {n} jobs", workers)
        wall = (time.monotonic_ns() - spawned) / 1e9
        cpu, busy = proc_cpu_seconds(broker_pid) - cpu0, machine_busy_seconds() - busy0
        out["worker_cpu_us_per_job"] = round((workers.cpu_seconds() - wcpu0) * 1e6 / max(1, n - first_done))
    finally:
        workers.stop()
    p = probe.progress(work)
    drain_s = max((p.last_ns - p.first_ns) / 1e9, 1e-9)
    out.update(drain_jobs_per_s=round((n - 1) / drain_s), drain_s=round(drain_s, 3),
               worker_start_s=round((p.first_ns - spawned) / 1e9, 3), done=p.done,
               broker_cores=round(cpu / wall, 2), machine_cores=round(busy / wall, 2),
               left=_depth(url, queue))
    if profile:
        out["profile"] = sampler.merge(work) if in_process else pyspy.finish(spy, work)
    drop_queues(url, queue, f"{queue}.DQ", f"{queue}.XQ")
    return out


def _paced(send: Any, rate: float, seconds: float, threads: int = 8) -> tuple[int, dict[int, int], float]:
    """Send rate*seconds stamped jobs on a fixed schedule, from ``threads`` sending threads taking
    turns (a client whose send() waits for the broker's confirm keeps the pace only if its sends
    overlap, as a web app's request threads do). Each job carries the time its send() was called;
    the map from that stamp to the *intended* send time lets the report give the latency from the
    schedule too, so a client that falls behind shows (no coordinated omission)."""
    total, period = int(rate * seconds), int(1e9 / rate)
    start, due_of = time.monotonic_ns() + 50_000_000, {}

    def sender(first: int) -> None:
        for i in range(first, total, threads):
            due = start + i * period
            ahead = due - time.monotonic_ns()
            if ahead > 0:
                time.sleep(ahead / 1e9)
            called = time.monotonic_ns()
            due_of[called] = due
            send(called)

    pool = [threading.Thread(target=sender, args=(n,), daemon=True) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return total, due_of, (time.monotonic_ns() - start) / 1e9


def _latencies(work: Path, due_of: dict[int, int]) -> dict[str, Any]:
    from_send, from_schedule = new_histogram(), new_histogram()
    for enq, began in probe.pairs(work):
        due = due_of.get(enq)
        if due is not None:
            from_send.record_value(max(1, (began - enq) // 1000))
            from_schedule.record_value(max(1, (began - due) // 1000))
    return {"latency_ms": summary_ms(from_send), "schedule_latency_ms": summary_ms(from_schedule)}


def latency(lib: Lib, url: str, work: Path, rate: float, seconds: float, concurrency: int = 0,
            timeout_s: float = 120.0) -> dict[str, Any]:
    """Workload B: workers running, jobs paced at ``rate``/s; enqueue (the send() call) -> start per
    job, and schedule -> start (what a client that cannot keep the pace adds)."""
    queue = f"jobbench-{lib.name}-b"
    workers = spawn(lib.worker_argv(queue, concurrency), url, queue, work)
    client = lib.connect(url, queue)
    try:
        for _ in range(WARM_JOBS):
            client.send_stamp(time.monotonic_ns())
        _wait(lambda: probe.progress(work).done >= WARM_JOBS, timeout_s, "warming the workers", workers)
        load = loadavg()
        total, due_of, took = _paced(client.send_stamp, rate, seconds)
        _wait(lambda: probe.progress(work).done >= WARM_JOBS + total, timeout_s, "finishing", workers)
        time.sleep(5 * probe.FLUSH_S)
    finally:
        client.close()
        workers.stop()
    out = {"workload": "latency", "rate": rate, "seconds": seconds, "sent": total,
           "sent_per_s": round(total / took), **_latencies(work, due_of), "load": load}
    drop_queues(url, queue, f"{queue}.DQ", f"{queue}.XQ")
    return out


def backlog(lib: Lib, url: str, n: int, broker_pid: int) -> dict[str, Any]:
    """Workload C: n jobs waiting (no workers); the broker's resident memory, then and at peak."""
    queue = f"jobbench-{lib.name}-c"
    rss0 = rss_kib(broker_pid)[0]
    out = {"workload": "backlog", "jobs": n, **_enqueue(lib, url, queue, n)}
    time.sleep(2.0)  # let the broker settle (page-out, GC) before reading
    rss, hwm = rss_kib(broker_pid)
    out.update(rss_before_mib=round(rss0 / 1024, 1), rss_mib=round(rss / 1024, 1),
               peak_rss_mib=round(hwm / 1024, 1), load=loadavg())
    drop_queues(url, queue, f"{queue}.DQ", f"{queue}.XQ")
    return out
