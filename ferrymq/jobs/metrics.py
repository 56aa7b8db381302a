"""Prometheus metrics for jobs: what was enqueued, started, succeeded, failed, retried and
dead-lettered, per job name and queue, and how long jobs ran and waited.

``MetricsMiddleware`` counts in the process it runs in: ``enqueued`` where jobs are sent (a web
process, or a worker whose jobs send jobs; retries and replays are not enqueues), the rest in
workers. ``failed`` counts runs that raised (each retried attempt is one), ``dead`` the jobs that
went to their DLQ (an unknown job name included). The queue wait is observed for first runs
(and replays): from the enqueue, or from the ETA of a delayed job, to the start; a retry's wait
would mostly measure its backoff.

``ferrymq worker --metrics-port N`` serves ``/metrics``. With ``--processes N`` it uses
prometheus-client's multiprocess mode: the children write their samples to files in one
directory and the supervisor serves their sum on the one port. One port per child would lose
a recycled child's counts when it restarts (counters would go back and forth between scrapes
of different children) and make Prometheus scrape N targets that are one worker; the sum over
every process that ever ran (their files stay) keeps counters monotonic.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.app import App
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

log = logging.getLogger("ferrymq.jobs.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client reads it when it is imported
DURATION_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                      30.0, 60.0, 300.0, float("inf"))
WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
                  float("inf"))


class JobMetrics:
    """The metric families, registered once per registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, text: str) -> Counter:
            return Counter(f"ferrymq_jobs_{name}", text, ["job", "queue"], registry=registry)

        self.enqueued = counter("enqueued", "Jobs sent (from this process).")
        self.started = counter("started", "Job runs started.")
        self.succeeded = counter("succeeded", "Job runs that returned.")
        self.failed = counter("failed", "Job runs that raised (retried or not).")
        self.retried = counter("retried", "Jobs republished for another attempt.")
        self.dead = counter("dead", "Jobs sent to their dead-letter queue.")
        self.duration = Histogram("ferrymq_jobs_duration_seconds", "Time jobs ran (their wraps included).",
                                  ["job"], buckets=DURATION_BUCKETS_S, registry=registry)
        self.queue_wait = Histogram("ferrymq_jobs_queue_wait_seconds",
                                    "Time from enqueue (or ETA) to a job's first start.", ["job"],
                                    buckets=WAIT_BUCKETS_S, registry=registry)


_families: dict[int, JobMetrics] = {}
_families_lock = threading.Lock()


def metrics_for(registry: CollectorRegistry) -> JobMetrics:
    """One JobMetrics per registry, however many apps or middlewares a process makes."""
    with _families_lock:
        found = _families.get(id(registry))
        if found is None:
            found = _families[id(registry)] = JobMetrics(registry)
        return found


class Series:
    """The labelled children of one (job, queue): a hook does one dict lookup, no label work."""

    __slots__ = ("dead", "duration", "enqueued", "failed", "queue_wait", "retried", "started", "succeeded")

    def __init__(self, families: JobMetrics, job: str, queue: str) -> None:
        self.enqueued = families.enqueued.labels(job, queue)
        self.started = families.started.labels(job, queue)
        self.succeeded = families.succeeded.labels(job, queue)
        self.failed = families.failed.labels(job, queue)
        self.retried = families.retried.labels(job, queue)
        self.dead = families.dead.labels(job, queue)
        self.duration = families.duration.labels(job)
        self.queue_wait = families.queue_wait.labels(job)


class MetricsMiddleware(Middleware):
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.families = metrics_for(registry)
        self._series: dict[tuple[str, str], Series] = {}

    def series(self, message: JobMessage) -> Series:
        key = (message.job, message.queue)
        found = self._series.get(key)
        if found is None:  # a race makes two equal Series: harmless, they share children
            found = self._series[key] = Series(self.families, message.job, message.queue)
        return found

    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        self.series(message).enqueued.inc()

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """Runs only when the job is really called (after every before_process let it through)."""
        series = self.series(message)
        series.started.inc()
        if message.attempt == 0:
            ready_ms = max(message.enqueued_ms, message.eta_ms or 0)
            series.queue_wait.observe(max(0, ctx.started_ms - ready_ms) / 1000)
        clock = ctx.clock
        start_us = clock.monotonic_us()
        try:
            return call()
        finally:
            series.duration.observe((clock.monotonic_us() - start_us) / 1e6)

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        series = self.series(message)
        (series.succeeded if exception is None else series.failed).inc()

    def after_retry(self, ctx: JobContext, message: JobMessage, delay_ms: int, reason: str) -> None:
        self.series(message).retried.inc()

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        self.series(message).dead.inc()


# --- serving from a worker ----------------------------------------------------------------------

def ensure_middleware(app: App) -> None:
    """An app run with --metrics-port counts, whether or not it listed the middleware; first in
    the list, so its wrap times the whole run."""
    if not any(isinstance(m, MetricsMiddleware) for m in app.middleware):
        app.middleware.insert(0, MetricsMiddleware())


def serve_worker_metrics(app: App, port: int, *, supervisor: bool, child: bool) -> None:
    """``ferrymq worker --metrics-port``: a single worker serves its own registry; a supervisor
    (``--processes N``) sets up multiprocess mode for its children and serves their sum; a
    child only counts (into the supervisor's directory)."""
    if supervisor:
        _serve(port, multiprocess_registry())
        log.info("worker processes write their metrics in %s", os.environ[MULTIPROC_ENV])
        return
    ensure_middleware(app)
    if not child:
        _serve(port, REGISTRY)


def multiprocess_registry() -> CollectorRegistry:
    """A fresh directory for the children (they inherit the variable) and a registry reading it."""
    from prometheus_client import multiprocess

    path = os.environ.get(MULTIPROC_ENV)
    if not path:
        path = os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="ferrymq-jobs-metrics-")
        atexit.register(shutil.rmtree, path, True)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def _serve(port: int, registry: CollectorRegistry) -> None:
    server, _ = start_http_server(port, registry=registry)
    log.info("metrics on http://0.0.0.0:%d/metrics", server.server_port)
