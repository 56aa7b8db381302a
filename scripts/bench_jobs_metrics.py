"""What MetricsMiddleware adds to one job: its hooks alone, the same counts with prometheus-client's
own Counter/Histogram (in-process and in its multiprocess mode, for comparison), and a no-op job's
whole run (``Processor.run``) with and without the middleware.

    python scripts/bench_jobs_metrics.py [--jobs 200000] [--rounds 5]

Each mode runs in a fresh interpreter (prometheus-client picks multiprocess mode when it is
imported). Reported: the best of ``--rounds``, in µs per job, with the machine's load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable


def best(step: Callable[[], object], jobs: int, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(jobs):
            step()
        times.append(time.perf_counter() - start)
    return min(times) / jobs * 1e6


def native_hooks() -> Callable[[], None]:
    """One job's counts (enqueued, started, wait, duration, succeeded) with prometheus-client's types."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    reg = CollectorRegistry()
    counters = [Counter(f"c{i}", "c", ["job", "queue"], registry=reg).labels("noop", "default")
                for i in range(3)]
    wait, duration = (Histogram(n, "h", ["job"], registry=reg).labels("noop") for n in ("w", "d"))

    def hooks() -> None:
        counters[0].inc()
        counters[1].inc()
        wait.observe(0.002)
        duration.observe(0.0001)
        counters[2].inc()
    return hooks


def measure(jobs: int, rounds: int) -> dict[str, float]:
    from ferrymq.jobs.app import App
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage
    from ferrymq.jobs.metrics import MetricsMiddleware
    from ferrymq.jobs.processor import Processor

    mw = MetricsMiddleware()
    plain, metered = App("amqp://127.0.0.1:1/"), App("amqp://127.0.0.1:1/", middleware=[mw])
    for app in (plain, metered):
        app.job(name="noop")(lambda: None)
    message = JobMessage("id", "noop", "default", enqueued_ms=plain.clock.now_ms())
    ctx = JobContext(metered, "bench", metered.clock, None, message)

    def hooks() -> None:
        mw.before_enqueue(metered, message)
        mw.wrap(ctx, message, lambda: None)
        mw.after_process(ctx, message, None, None)

    run_plain, run_metered = Processor(plain, "bench").run, Processor(metered, "bench").run
    return {"hooks_us": best(hooks, jobs, rounds), "native_us": best(native_hooks(), jobs, rounds),
            "run_plain_us": best(lambda: run_plain(message), jobs, rounds),
            "run_metered_us": best(lambda: run_metered(message), jobs, rounds)}


def child(multiprocess: bool, jobs: int, rounds: int) -> dict[str, float]:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as path:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = path
        argv = [sys.executable, __file__, "--child", "--jobs", str(jobs), "--rounds", str(rounds)]
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.jobs, args.rounds)))
        return
    print(f"load average {os.getloadavg()}; {args.jobs} jobs, best of {args.rounds}")
    r = child(False, args.jobs, args.rounds)
    mp = child(True, args.jobs, args.rounds)
    print(f"MetricsMiddleware hooks: {r['hooks_us']:.2f} µs/job; the same counts with prometheus-client "
          f"Counter/Histogram: {r['native_us']:.2f} µs in-process, {mp['native_us']:.2f} µs multiprocess")
    print(f"no-op job, Processor.run: {r['run_plain_us']:.2f} µs -> {r['run_metered_us']:.2f} µs with "
          f"MetricsMiddleware (+{r['run_metered_us'] - r['run_plain_us']:.2f} µs/job)")


if __name__ == "__main__":
    main()
