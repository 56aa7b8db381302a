"""The ferrymq.jobs side: an App and two jobs, as its users write them.

    ferrymq worker ferrymq.bench.jobs.ferrymq_app:app --processes 2 --concurrency N --queues Q

Until the job system's spine (``ferrymq.jobs.App``) is on this branch, ``available()`` is False and
the runner reports the library as missing instead of failing.
"""

from __future__ import annotations

import os
from typing import Any

from ferrymq.bench.jobs import probe

URL_ENV, QUEUE_ENV = "FERRYMQ_JOBBENCH_URL", "FERRYMQ_JOBBENCH_QUEUE"


def noop() -> None:
    probe.record()


def stamp(enqueued_ns: int) -> None:
    probe.record(enqueued_ns)


def _app_class() -> Any:
    """ferrymq.jobs.App, looked up by name while the spine is not on every branch (mypy-clean)."""
    import ferrymq.jobs

    return getattr(ferrymq.jobs, "App", None)


def available() -> bool:
    return _app_class() is not None


def make(url: str, queue: str) -> tuple[Any, dict[str, Any]]:
    a = _app_class()(url)
    jobs = {fn.__name__: a.job(queue=queue, retries=0)(fn) for fn in (noop, stamp)}
    return a, jobs


app, jobs = (make(os.environ.get(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/%2F"),
                  os.environ.get(QUEUE_ENV, "jobbench")) if available() else (None, {}))
