"""The ferrymq.jobs side: an App and two jobs, as its users write them.

    ferrymq worker ferrymq.bench.jobs.ferrymq_app:app --processes 2 --concurrency N --queues Q

With ``FERRYMQ_JOBBENCH_SAMPLE`` set, each worker process also runs the stack sampler (``sampler``).
"""

from __future__ import annotations

import os
from typing import Any

from ferrymq.bench.jobs import probe, sampler
from ferrymq.jobs import App

URL_ENV, QUEUE_ENV = "FERRYMQ_JOBBENCH_URL", "FERRYMQ_JOBBENCH_QUEUE"


def noop() -> None:
    probe.record()


def stamp(enqueued_ns: int) -> None:
    probe.record(enqueued_ns)


def make(url: str, queue: str) -> tuple[App, dict[str, Any]]:
    a = App(url)
    jobs = {fn.__name__: a.job(queue=queue, retries=0)(fn) for fn in (noop, stamp)}
    return a, jobs


app, jobs = make(os.environ.get(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/%2F"),
                 os.environ.get(QUEUE_ENV, "jobbench"))
sampler.start_if_asked()
