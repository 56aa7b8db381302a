"""`ferrymq worker --metrics-port`: real worker processes run jobs that succeed, fail, retry and
die, and /metrics, scraped over HTTP, counts them (summed over every child with --processes)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.jobs.metrics import MetricsMiddleware
from tests.support.jobs import WorkerProcess, runs, wait_until
from tests.support.jobs_app import sender

pytestmark = pytest.mark.timeout(120)
PORT_LINE = re.compile(r"metrics on http://0\.0\.0\.0:(\d+)/metrics")


def metrics_url(worker: WorkerProcess) -> str:
    """The worker binds port 0 and logs the port it got."""
    wait_until(lambda: PORT_LINE.search(worker.log()) is not None, 60, "the metrics port in the log")
    match = PORT_LINE.search(worker.log())
    assert match is not None
    return f"http://127.0.0.1:{match.group(1)}/metrics"


def scrape(url: str) -> dict[tuple[str, str], float]:
    """(sample name, job) -> value, summed over the other labels."""
    found: dict[tuple[str, str], float] = {}
    text = requests.get(url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("ferrymq_jobs_") and not s.name.endswith(("_created", "_bucket")):
                key = (s.name, s.labels.get("job", ""))
                found[key] = found.get(key, 0.0) + s.value
    return found


def test_worker_metrics_count_started_succeeded_failed_retried_and_dead_jobs(jobs_url, effects):
    registry = CollectorRegistry()
    app = sender(jobs_url)
    app.add_middleware(MetricsMiddleware(registry))
    for n in range(3):
        app.jobs["record"].send(n)
    for n in range(2):
        app.jobs["flaky"].send(n)
    app.jobs["doomed"].send()
    assert [registry.get_sample_value("ferrymq_jobs_enqueued_total", {"job": job, "queue": "default"})
            for job in ("record", "flaky", "doomed")] == [3, 2, 1], "enqueues count where jobs are sent"

    worker = WorkerProcess(jobs_url, effects, "--concurrency", "2", "--metrics-port", "0")
    expected = {
        "record": {"started": 3, "succeeded": 3, "failed": 0, "retried": 0, "dead": 0, "runs": 3, "waits": 3},
        "flaky": {"started": 4, "succeeded": 2, "failed": 2, "retried": 2, "dead": 0, "runs": 4, "waits": 2},
        "doomed": {"started": 2, "succeeded": 0, "failed": 2, "retried": 1, "dead": 1, "runs": 2, "waits": 1},
    }
    observed: dict[str, dict[str, float]] = {}

    def counted() -> bool:
        samples = scrape(where)
        for job in expected:
            observed[job] = {name: samples.get((f"ferrymq_jobs_{name}_total", job), 0.0)
                             for name in ("started", "succeeded", "failed", "retried", "dead")}
            observed[job]["runs"] = samples.get(("ferrymq_jobs_duration_seconds_count", job), 0.0)
            observed[job]["waits"] = samples.get(("ferrymq_jobs_queue_wait_seconds_count", job), 0.0)
        return observed == expected

    try:
        where = metrics_url(worker)
        wait_until(lambda: len(runs(effects)) >= 9, 30, "every run")
        wait_until(counted, 30, "the counts")
    finally:
        worker.stop()
        app.close()
    assert observed == expected


def test_metrics_of_two_processes_are_summed_on_one_port_and_survive_recycled_children(jobs_url, effects):
    app = sender(jobs_url)
    app.jobs["record"].send_many([(n,) for n in range(30)])
    app.close()
    worker = WorkerProcess(jobs_url, effects, "--processes", "2", "--concurrency", "2", "--max-tasks", "5",
                           "--metrics-port", "0")
    try:
        where = metrics_url(worker)
        wait_until(lambda: len(runs(effects, "record")) >= 30, 60, "30 runs")
        ran = runs(effects, "record")
        wait_until(lambda: scrape(where).get(("ferrymq_jobs_succeeded_total", "record")) == len(ran), 30,
                   "the sum of every child's counts")
        samples = scrape(where)
        worker.signal(signal.SIGTERM)
        code = worker.wait(60)
    finally:
        worker.stop()
    files = re.search(r"worker processes write their metrics in (\S+)", worker.log())
    assert files is not None and not Path(files.group(1)).exists(), f"left by the supervisor (exit {code})"
    assert len({r[3] for r in ran}) >= 3, "children were recycled (each takes at most ~5 jobs)"
    # every run started is counted once, whichever child (living or recycled) ran it
    started, failed = (samples.get((f"ferrymq_jobs_{name}_total", "record"), 0.0)
                       for name in ("started", "failed"))
    assert started == len(ran) + failed and len(ran) >= 30
    assert samples[("ferrymq_jobs_duration_seconds_count", "record")] == started
