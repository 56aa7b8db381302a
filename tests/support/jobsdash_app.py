"""The job app of the Jobs-page tests, run in a real ``ferrymq worker`` process.

Broker URL from FERRYMQ_JOBS_URL, store (job states, cron lease and fires) from
FERRYMQ_JOBS_STORE (in memory when unset: importing this module writes no file). ``flaky`` fails
its first run and waits an hour for its retry (so the retry stays on the schedule while a test
looks); ``doomed`` dies at once; ``report`` is on a daily cron (never due while a test runs);
``hello`` succeeds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ferrymq.jobs import App, current

if TYPE_CHECKING:
    from ferrymq.testing import EmbeddedBroker
    from tests.support.jobs import WorkerProcess

app = App(os.environ.get("FERRYMQ_JOBS_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"),
          store=os.environ.get("FERRYMQ_JOBS_STORE", "sqlite://"), state=True,
          queues={"default": 50, "billing": 100})


@app.job(name="hello")
def hello(n: int) -> int:
    return n


@app.job(name="flaky", queue="billing", retries=3, backoff=["1h"])
def flaky(order: str) -> None:
    if current.message.attempt == 0:
        raise RuntimeError(f"card declined for {order}")


@app.job(name="doomed", queue="billing", retries=0)
def doomed(order: str) -> None:
    raise ValueError(f"order {order} does not exist")


@app.schedule("daily_report", cron="0 9 * * *", tz="Europe/Paris")
def report() -> None:
    pass


def sender(url: str, store: str) -> App:
    """The same jobs on another broker URL and store: what a test sends with."""
    from ferrymq.jobs import Job

    other = App(url, store=store, state=True, queues=dict(app.queues))
    for name, job in app.jobs.items():
        other.jobs[name] = Job(other, job.fn, job.options)
    return other


@contextmanager
def running(tmp: Path, concurrency: int) -> Iterator[tuple[EmbeddedBroker, WorkerProcess, App]]:
    """A broker that reads the store at ``tmp``/jobs.db, a ``ferrymq worker`` process on this app
    writing it, and a sender; the worker is killed and the broker stopped at the end."""
    from ferrymq.testing import EmbeddedBroker
    from tests.support.jobs import WorkerProcess

    store = f"sqlite:///{tmp / 'jobs.db'}"
    with EmbeddedBroker(jobs_store=store) as broker:
        worker = WorkerProcess(broker.amqp_url, tmp / "effects.db", "--concurrency", str(concurrency),
                               app="tests.support.jobsdash_app:app", env={"FERRYMQ_JOBS_STORE": store})
        other = sender(broker.amqp_url, store)
        try:
            yield broker, worker, other
        finally:
            other.close()
            worker.stop()
