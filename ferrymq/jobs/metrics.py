"""Prometheus metrics for jobs: what was enqueued, started, succeeded, failed, retried and
dead-lettered, per job name and queue, and how long jobs ran and waited.

``MetricsMiddleware`` counts in the process it runs in: ``enqueued`` where jobs are sent (a web
process, or a worker whose jobs send jobs; retries and replays are not enqueues), the rest in
workers. ``failed`` counts runs that raised (each retried attempt is one), ``dead`` the jobs that
went to their DLQ (an unknown job name included). The queue wait is observed for first runs
(and replays): from the enqueue, or from the ETA of a delayed job, to the start; a retry's wait
would mostly measure its backoff.

Cost: each thread adds to plain lists of its own (no lock, no lost update) and a
prometheus-client collector sums them when /metrics is scraped: about 1.8 µs for one job's
hooks, clock reads included, where prometheus-client's own Counter and Histogram (a lock per
increment) take about 3 µs in-process and 8.5 µs in its multiprocess mode (an mmap write per
increment); see scripts/bench_jobs_metrics.py.

``ferrymq worker --metrics-port N`` serves ``/metrics``. With ``--processes N`` the supervisor
serves, on the one port, the sum of what its children write to one directory (each child
rewrites its own file every FLUSH_S and when it stops); a recycled child's file stays, so the
counters never go back. One port per child would lose a recycled child's counts and make
Prometheus scrape N targets that are one worker. A child killed with SIGKILL loses at most its
last FLUSH_S of counts (prometheus-client's multiprocess mode would lose none, at the cost above).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.app import App
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

log = logging.getLogger("ferrymq.jobs.metrics")

SHARED_DIR_ENV = "FERRYMQ_JOBS_METRICS_DIR"  # set by a supervisor for its children
FLUSH_S = 1.0
DURATION_BOUNDS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                     30.0, 60.0, 300.0, float("inf"))
WAIT_BOUNDS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                 float("inf"))
COUNTERS = (("enqueued", "Jobs sent (from this process)."), ("started", "Job runs started."),
            ("succeeded", "Job runs that returned."), ("failed", "Job runs that raised (retried or not)."),
            ("retried", "Jobs republished for another attempt."),
            ("dead", "Jobs sent to their dead-letter queue."))
# One (job, queue)'s row: the counters, then each histogram's (non-cumulative) buckets and sum.
ENQUEUED, STARTED, SUCCEEDED, FAILED, RETRIED, DEAD = range(6)
DURATION = len(COUNTERS)
DURATION_SUM = DURATION + len(DURATION_BOUNDS_S)
WAIT = DURATION_SUM + 1
WAIT_SUM = WAIT + len(WAIT_BOUNDS_S)
ROW = WAIT_SUM + 1

Rows = dict[tuple[str, str], list[float]]


def add_rows(into: Rows, rows: Iterable[tuple[tuple[str, str], list[float]]]) -> Rows:
    for key, row in rows:
        total = into.get(key)
        if total is None:
            into[key] = list(row)
        else:
            for i, value in enumerate(row):
                total[i] += value
    return into


class Tallies:
    """Every thread's rows, and the collector that sums them for a scrape."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._tables: list[tuple[threading.Thread, Rows]] = []
        self._retired: Rows = {}  # the rows of threads that ended
        self._shared: Path | None = None
        self._stop = threading.Event()  # never set: the flusher is a daemon that ends with its process

    def row(self, job: str, queue: str) -> list[float]:
        try:
            table: Rows = self._local.table
        except AttributeError:
            table = self._local.table = {}
            with self._lock:
                self._tables.append((threading.current_thread(), table))
        found = table.get((job, queue))
        if found is None:
            found = table[(job, queue)] = [0.0] * ROW
        return found

    def totals(self) -> Rows:
        with self._lock:
            ended = [t for t in self._tables if not t[0].is_alive()]
            for entry in ended:
                add_rows(self._retired, entry[1].items())
                self._tables.remove(entry)
            totals = add_rows({}, self._retired.items())
            for _, table in self._tables:
                add_rows(totals, table.copy().items())  # dict.copy is atomic: the owner may add a key
        return totals

    def collect(self) -> Iterator[Metric]:
        yield from families(self.totals())

    # --- a supervisor's child: its totals in a file of the shared directory ------------------

    def share_to(self, directory: str) -> None:
        if self._shared is None:
            self._shared = Path(directory) / f"jobs-{os.getpid()}.json"
            threading.Thread(target=self._flush_loop, name="ferrymq-jobs-metrics", daemon=True).start()
            atexit.register(self.flush)

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush()

    def flush(self) -> None:
        if self._shared is not None:
            doc = [[job, queue, row] for (job, queue), row in self.totals().items()]
            spare = self._shared.with_suffix(".tmp")
            spare.write_text(json.dumps(doc))
            spare.replace(self._shared)  # a reader sees the old file or the new one, never half


class SharedCollector:
    """The supervisor's view: the sum of its children's files."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def collect(self) -> Iterator[Metric]:
        totals: Rows = {}
        for path in self.directory.glob("jobs-*.json"):
            try:
                doc = json.loads(path.read_text())
            except (OSError, ValueError):  # removed meanwhile
                continue
            add_rows(totals, (((job, queue), row) for job, queue, row in doc))
        yield from families(totals)


def families(totals: Rows) -> Iterator[Metric]:
    """The Prometheus families of summed rows (histograms summed over queues, by job)."""
    for index, (name, text) in enumerate(COUNTERS):
        counter = CounterMetricFamily(f"ferrymq_jobs_{name}", text, labels=["job", "queue"])
        for (job, queue), row in sorted(totals.items()):
            counter.add_metric([job, queue], row[index])
        yield counter
    by_job = add_rows({}, (((job, ""), row) for (job, _), row in totals.items()))
    for name, text, first, bounds in (
            ("duration", "Time jobs ran (their wraps included).", DURATION, DURATION_BOUNDS_S),
            ("queue_wait", "Time from enqueue (or ETA) to a job's first start.", WAIT, WAIT_BOUNDS_S)):
        histogram = HistogramMetricFamily(f"ferrymq_jobs_{name}_seconds", text, labels=["job"])
        for (job, _), row in sorted(by_job.items()):
            cumulative, buckets = 0.0, []
            for i, bound in enumerate(bounds):
                cumulative += row[first + i]
                buckets.append((floatToGoString(bound), cumulative))
            histogram.add_metric([job], buckets, row[first + len(bounds)])
        yield histogram


_tallies: weakref.WeakKeyDictionary[CollectorRegistry, Tallies] = weakref.WeakKeyDictionary()
_tallies_lock = threading.Lock()


def tallies_for(registry: CollectorRegistry) -> Tallies:
    """One Tallies (registered once) per registry, however many middlewares a process makes."""
    with _tallies_lock:
        found = _tallies.get(registry)  # by the registry itself: an id can be reused once it is freed
        if found is None:
            found = _tallies[registry] = Tallies()
            registry.register(found)  # type: ignore[arg-type]  # a collector by shape
        return found


class MetricsMiddleware(Middleware):
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.tallies = tallies_for(registry)
        self.row = self.tallies.row

    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        self.row(message.job, message.queue)[ENQUEUED] += 1

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """Runs only when the job is really called (after every before_process let it through)."""
        row = self.row(message.job, message.queue)
        row[STARTED] += 1
        if message.attempt == 0:
            wait_s = max(0, ctx.started_ms - max(message.enqueued_ms, message.eta_ms or 0)) / 1000
            row[WAIT + bisect_left(WAIT_BOUNDS_S, wait_s)] += 1
            row[WAIT_SUM] += wait_s
        clock = ctx.clock
        start_us = clock.monotonic_us()
        try:
            return call()
        finally:
            ran_s = (clock.monotonic_us() - start_us) / 1e6
            row[DURATION + bisect_left(DURATION_BOUNDS_S, ran_s)] += 1
            row[DURATION_SUM] += ran_s

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        self.row(message.job, message.queue)[SUCCEEDED if exception is None else FAILED] += 1

    def after_retry(self, ctx: JobContext, message: JobMessage, delay_ms: int, reason: str) -> None:
        self.row(message.job, message.queue)[RETRIED] += 1

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        self.row(message.job, message.queue)[DEAD] += 1

    def before_worker_shutdown(self, worker: Any) -> None:
        self.tallies.flush()


# --- serving from a worker ----------------------------------------------------------------------

def ensure_middleware(app: App) -> MetricsMiddleware:
    """An app run with --metrics-port counts, whether or not it listed the middleware; first in
    the list, so its wrap times the whole run."""
    for middleware in app.middleware:
        if isinstance(middleware, MetricsMiddleware):
            return middleware
    added = MetricsMiddleware()
    app.middleware.insert(0, added)
    return added


def serve_worker_metrics(app: App, port: int, *, supervisor: bool, child: bool) -> None:
    """``ferrymq worker --metrics-port``: a single worker serves its own counts; a supervisor
    (``--processes N``) makes the shared directory and serves its children's sum; a child
    counts and writes its file there."""
    if supervisor:
        directory = os.environ[SHARED_DIR_ENV] = tempfile.mkdtemp(prefix="ferrymq-jobs-metrics-")
        atexit.register(shutil.rmtree, directory, True)
        registry = CollectorRegistry()
        registry.register(SharedCollector(directory))  # type: ignore[arg-type]
        _serve(port, registry)
        log.info("worker processes write their metrics in %s", directory)
        return
    middleware = ensure_middleware(app)
    shared = os.environ.get(SHARED_DIR_ENV)
    if child and shared:
        middleware.tallies.share_to(shared)
    elif not child:
        _serve(port, REGISTRY)


def _serve(port: int, registry: CollectorRegistry) -> None:
    server, _ = start_http_server(port, registry=registry)
    log.info("metrics on http://0.0.0.0:%d/metrics", server.server_port)
