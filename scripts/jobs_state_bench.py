"""What the opt-in job stores cost: state events/s, jobs/s with and without the state middleware,
and rate-limiter grants/s, on a SQLite file (or PostgreSQL with --postgres URL).

    PYTHONPATH=. .venv/bin/python scripts/jobs_state_bench.py [--events 20000] [--postgres URL]

Prints one line per measurement (wall clock, this process; the machine's load is printed first).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ferrymq.jobs import App, Middleware
from ferrymq.jobs.db import Database
from ferrymq.jobs.idempotency import IdempotencyMiddleware
from ferrymq.jobs.ratelimit import ConcurrencyLimit, Limiter, RateLimitMiddleware, SlidingWindow, TokenBucket
from ferrymq.jobs.results import ResultsMiddleware
from ferrymq.jobs.state import StateMiddleware, StateStore


def rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def events_per_s(db: Database, events: int, threads: int, lazy: bool = False) -> tuple[float, float]:
    """Events/s recorded by ``threads`` threads at once (until all are committed), and events per
    transaction; ``lazy`` as the worker's events are by default."""
    store = StateStore(db)
    each = events // threads

    def work(t: int) -> None:
        for i in range(each):
            store.record(f"b{t}-{i // 3}", "bench", "default", ("enqueued", "started", "succeeded")[i % 3],
                         1_700_000_000_000 + i, "w1", lazy=lazy)

    def run() -> None:
        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        store.flush()

    per_s = rate(each * threads, run)
    return per_s, each * threads / max(1, store.batches_written)


def jobs_per_s(db: Database | None, jobs: int, threads: int = 1, stack: str = "state") -> float:
    """No-op jobs/s through the real processor (eager mode: send, then run in the sending thread),
    from ``threads`` threads at once: with the state middleware, with the results and rate-limit
    middlewares (which the no-op job does not use), or with no middleware and no store."""
    middleware: list[Middleware] = []
    if db is not None:
        unused: list[Middleware] = [ResultsMiddleware(db), RateLimitMiddleware(db)]
        middleware = [StateMiddleware(db)] if stack == "state" else unused
    app = App("eager://", store=db, middleware=middleware)
    app.middleware = [m for m in app.middleware if not isinstance(m, IdempotencyMiddleware)]  # ours alone
    noop = app.job(name="noop")(lambda: None)
    each = jobs // threads

    def run() -> None:
        pool = [threading.Thread(target=lambda: [noop.send() for _ in range(each)]) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        for m in middleware:
            if isinstance(m, StateMiddleware):
                m.store.flush()  # counted until every event is in the database

    return rate(each * threads, run)


def grants_per_s(db: Database, limiter: Limiter, n: int) -> float:
    now = 1_700_000_000_000

    def run() -> None:
        for i in range(n):
            limiter.acquire(db, now + i, holder=f"h{i}")
            limiter.release(db, holder=f"h{i}")

    return rate(n, run)


def measure(label: str, fresh: Callable[[str], Database], events: int) -> None:
    for threads, lazy in ((1, False), (8, False), (1, True), (8, True)):
        per_s, batch = events_per_s(fresh(f"events{threads}{lazy}"), events, threads, lazy)
        print(f"{label}: state events/s, {threads} thread(s), {'lazy' if lazy else 'sync'}: {per_s:,.0f}"
              f" ({batch:.1f} events/transaction)")
    for threads in (1, 8):
        per_s = jobs_per_s(fresh(f"jobs{threads}"), 4000, threads)
        print(f"{label}: no-op jobs/s with StateMiddleware, {threads} thread(s): {per_s:,.0f}")
    per_s = jobs_per_s(fresh("plain"), 20_000, 1, stack="results+limits")
    print(f"{label}: no-op jobs/s with Results+RateLimit middleware (the job uses neither): {per_s:,.0f}")
    for limiter in (TokenBucket("b", rate=1_000_000), ConcurrencyLimit("c", limit=10),
                    SlidingWindow("w", limit=1_000_000, window="1s")):
        per_s = grants_per_s(fresh("rl"), limiter, 2000)
        print(f"{label}: {limiter!r} acquire+release/s, 1 thread: {per_s:,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--postgres", default=None, help="postgresql://... to measure instead of SQLite")
    args = parser.parse_args()
    print("load:", os.getloadavg())
    if args.postgres:
        measure("postgresql", lambda name: Database(args.postgres), args.events)
    with tempfile.TemporaryDirectory() as tmp:
        for durable in (False, True):
            def fresh(name: str, durable: bool = durable) -> Database:
                return Database(f"sqlite:///{Path(tmp) / f'{name}-{durable}.db'}", durable=durable)

            if not args.postgres:
                measure(f"sqlite durable={durable}", fresh, args.events)
    for threads in (1, 8):
        print(f"no store: no-op jobs/s, {threads} thread(s): {jobs_per_s(None, 20_000, threads):,.0f}")


if __name__ == "__main__":
    main()
