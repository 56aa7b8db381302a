"""A tiny Celery app for tests/compat/test_celery.py.

The worker subprocess runs ``celery -A tests.compat.celery_app worker``, which picks up ``app`` below,
configured from the environment: ``FERRYMQ_CELERY_BROKER`` (a ``pyamqp://`` URL) and
``FERRYMQ_CELERY_MODE`` (``classic``: priority queue ``ferry-main``; ``quorum``: quorum queue
``ferry-quorum`` on a topic exchange, so Celery uses RabbitMQ-native delayed delivery).
The test process builds its own client app with the same function, so task names and queues match.
"""

from __future__ import annotations

import os
import time

from celery import Celery


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def make_app(broker_url: str, mode: str = "classic") -> Celery:
    app = Celery("ferrymq_compat", broker=broker_url, set_as_current=False)
    app.conf.update(
        result_backend="rpc://",
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=3,
        worker_prefetch_multiplier=1,
    )
    if mode == "quorum":
        app.conf.update(
            task_default_queue="ferry-quorum",
            task_default_exchange="ferry-quorum",
            task_default_exchange_type="topic",
            task_default_routing_key="ferry-quorum",
            task_default_queue_type="quorum",
            worker_detect_quorum_queues=True,
        )
    else:
        app.conf.update(
            task_default_queue="ferry-main",
            task_default_exchange="ferry-main",
            task_default_routing_key="ferry-main",
            task_queue_max_priority=10,
            task_default_priority=0,
        )

    @app.task(name="ferry.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="ferry.flaky", shared=False, bind=True, max_retries=5)
    def flaky(self, path: str) -> int:
        """Fails on its first two runs (retrying after 1 s each time), succeeds on the third."""
        retries = self.request.retries
        _append(path, f"{retries} {time.time():.3f}")
        if retries < 2:
            raise self.retry(exc=RuntimeError(f"planned failure #{retries + 1}"), countdown=1)
        return retries

    @app.task(name="ferry.late_mul", shared=False, acks_late=True)
    def late_mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="ferry.record", shared=False, ignore_result=True)
    def record(path: str, label: str) -> None:
        _append(path, label)

    @app.task(name="ferry.stamp", shared=False)
    def stamp() -> float:
        return time.time()

    return app


app = make_app(
    os.environ.get("FERRYMQ_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//"),
    os.environ.get("FERRYMQ_CELERY_MODE", "classic"),
)
