"""A job app the job-system tests run in real ``ferrymq worker`` processes.

The broker URL comes from FERRYMQ_JOBS_URL and every run records itself in the SQLite file named
by FERRYMQ_JOBS_EFFECTS (job, argument, attempt, worker pid), so a test counts what ran where
and how often, across processes, kills and restarts.
"""

from __future__ import annotations

import os
import time

from ferrymq.jobs import App, current
from ferrymq.jobs.db import Database

app = App(os.environ.get("FERRYMQ_JOBS_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
          queues={"critical": 100, "default": 50, "bulk": 10}, priorities=True,
          lease=os.environ.get("FERRYMQ_JOBS_LEASE"))
_effects: Database | None = None


def effects() -> Database:
    global _effects
    if _effects is None:
        _effects = Database(f"sqlite:///{os.environ['FERRYMQ_JOBS_EFFECTS']}")
        _effects.create(["CREATE TABLE IF NOT EXISTS runs (job TEXT, arg TEXT, attempt INTEGER, pid INTEGER,"
                         " redelivered INTEGER)"])
    return _effects


def record(job: str, arg: object) -> None:
    message = current.message
    with effects().transaction() as tx:
        tx.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                   (job, str(arg), message.attempt, os.getpid(), int(bool(message.extra.get("redelivered")))))


@app.job(name="record")
def record_job(n: int) -> None:
    record("record", n)


@app.job(name="slow", retries=0)
def slow(n: int, seconds: float) -> None:
    time.sleep(seconds)
    record("slow", n)


@app.job(name="flaky", retries=3, backoff=["100ms"])
def flaky(n: int) -> None:
    record("flaky", n)
    if current.message.attempt == 0:
        raise RuntimeError(f"first run of {n} fails")


@app.job(name="doomed", retries=1, backoff=["50ms"])
def doomed() -> None:
    record("doomed", "")
    raise ValueError("this job always fails")


for _queue in ("critical", "bulk"):
    app.job(name=f"record_{_queue}", queue=_queue)(
        lambda n, _q=_queue: record(f"record_{_q}", n))


def sender(url: str) -> App:
    """The same jobs (names, queues, options) on another broker URL: what a test sends with."""
    from ferrymq.jobs import Job

    other = App(url, queues=dict(app.queues), priorities=True, lease=app.lease_ms and app.lease_ms / 1000)
    for name, job in app.jobs.items():
        other.jobs[name] = Job(other, job.fn, job.options)
    return other
