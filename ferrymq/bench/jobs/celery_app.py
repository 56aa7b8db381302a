"""The Celery side: an app with Celery's defaults (acks_late off, prefetch multiplier 4, py-amqp,
persistent messages, no publisher confirms, no result backend) and two tasks.

    celery -A ferrymq.bench.jobs.celery_app worker --pool prefork --concurrency 2 -Q Q
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from ferrymq.bench.jobs import probe


def make(url: str, queue: str) -> tuple[Celery, dict[str, Any]]:
    a = Celery("jobbench", broker=url, set_as_current=False)
    a.conf.update(task_default_queue=queue, broker_connection_retry_on_startup=True,
                  worker_hijack_root_logger=False)
    tasks = {fn.__name__: a.task(name=f"jobbench.{fn.__name__}", shared=False)(fn)
             for fn in (probe.noop, probe.stamp)}
    return a, tasks


app, tasks = make(*probe.settings())
