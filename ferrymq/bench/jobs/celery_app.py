"""The Celery side: an app with Celery's defaults (acks_late off, prefetch multiplier 4, py-amqp,
persistent messages, no publisher confirms, no result backend) and two tasks.

    celery -A ferrymq.bench.jobs.celery_app worker --pool prefork --concurrency 2 -Q Q
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from ferrymq.bench.jobs import probe

URL_ENV, QUEUE_ENV = "FERRYMQ_JOBBENCH_URL", "FERRYMQ_JOBBENCH_QUEUE"


def noop() -> None:
    probe.record()


def stamp(enqueued_ns: int) -> None:
    probe.record(enqueued_ns)


def make(url: str, queue: str) -> tuple[Celery, dict[str, Any]]:
    a = Celery("jobbench", broker=url, set_as_current=False)
    a.conf.update(task_default_queue=queue, broker_connection_retry_on_startup=True,
                  worker_hijack_root_logger=False)
    tasks = {fn.__name__: a.task(name=f"jobbench.{fn.__name__}", shared=False)(fn) for fn in (noop, stamp)}
    return a, tasks


app, tasks = make(os.environ.get(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/%2F"),
                  os.environ.get(QUEUE_ENV, "jobbench"))
