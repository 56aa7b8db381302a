"""The Celery app for tests/compat/test_celery_features.py (one worker subprocess per test).

``celery -A tests.compat.celery_features_app worker`` builds ``app`` from the environment:
``FERRYMQ_CELERY_BROKER`` (AMQP URL), ``FERRYMQ_CELERY_RESULTS`` (the result backend URL: ``file://DIR``,
so chords work without SQLAlchemy, or ``rpc://``, results as AMQP messages to the caller's reply queue),
``FERRYMQ_CELERY_QUEUE`` (each test gets a queue of its own, so a leftover of one cannot reach the next).
``FERRYMQ_CELERY_PREFETCH`` (the prefetch multiplier, 1 unless a test says otherwise) and
``FERRYMQ_CELERY_QUEUE_TYPE`` (``classic``, the default, or ``quorum``).
The queue is declared with ``x-max-priority``; every publish (client and worker) uses publisher confirms.
Tasks leave their traces in files named by the test, as lines, so a test can read what ran, in
which order, in which process and on which delivery.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery
from celery.exceptions import Reject
from kombu import Exchange, Queue

MAX_PRIORITY = 10
GATE_SECONDS = 60  # a gated task never outlives its test's own timeouts


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _lines(path: str) -> list[str]:
    return Path(path).read_text(encoding="utf-8").splitlines() if os.path.exists(path) else []


def _redelivered(task: Any) -> int:
    """1 when the broker set the AMQP redelivered flag on this delivery."""
    return int(bool((task.request.delivery_info or {}).get("redelivered")))


def queue(name: str, queue_type: str = "classic") -> Queue:
    """The test's queue, on its own direct exchange: classic with priorities 0..10 (x-max-priority)
    and rejected messages dead-lettered to ``<name>.dlq`` (which the test declares, if it wants them),
    or a quorum queue (RabbitMQ 3.10's have no priorities)."""
    arguments: dict[str, Any] = {"x-queue-type": "quorum"}
    if queue_type != "quorum":
        arguments = {"x-max-priority": MAX_PRIORITY, "x-dead-letter-exchange": "",
                     "x-dead-letter-routing-key": f"{name}.dlq"}
    return Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments=arguments)


def make_app(broker_url: str, result_backend: str, queue_name: str, prefetch: int = 1,
             queue_type: str = "classic") -> Celery:
    app = Celery("ferrymq_features", broker=broker_url, set_as_current=False)
    app.conf.update(
        result_backend=result_backend,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=3,
        broker_transport_options={"confirm_publish": True},  # every publish waits for the broker's ack
        worker_prefetch_multiplier=prefetch,
        task_queues=[queue(queue_name, queue_type)],
        task_default_queue=queue_name,
        task_default_exchange=queue_name,
        task_default_routing_key=queue_name,
        task_default_priority=0,
    )
    _register(app)
    return app


def _register(app: Celery) -> None:
    @app.task(name="feat.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="feat.tsum", shared=False)
    def tsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="feat.record", shared=False)
    def record(path: str, label: str) -> str:
        _append(path, f"{label} {time.time():.3f}")
        return label

    @app.task(name="feat.autoretry", shared=False, bind=True, autoretry_for=(RuntimeError,),
              retry_kwargs={"max_retries": 3, "countdown": 1}, retry_backoff=False)
    def autoretry(self, path: str) -> int:
        """Raises on its first run; ``autoretry_for`` turns that into ``self.retry(countdown=1)``."""
        _append(path, f"{self.request.retries} {time.time():.3f}")
        if self.request.retries == 0:
            raise RuntimeError("planned failure on attempt 1")
        return self.request.retries + 1

    @app.task(name="feat.gated", shared=False, bind=True, acks_late=True)
    def gated(self, path: str, label: str, gate: str) -> str:
        """Holds its pool slot (and, acks_late, its unacked delivery) until the test opens ``gate``."""
        _append(path, f"start {label} {_redelivered(self)}")
        deadline = time.monotonic() + GATE_SECONDS
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)
        return label

    @app.task(name="feat.refuse", shared=False, bind=True, acks_late=True)
    def refuse(self, path: str) -> None:
        """Rejects its message without requeueing: the queue's dead-letter exchange takes it."""
        _append(path, f"refused {_redelivered(self)}")
        raise Reject("not for this queue", requeue=False)

    @app.task(name="feat.hang_once", shared=False, bind=True, acks_late=True, reject_on_worker_lost=True)
    def hang_once(self, path: str) -> int:
        """The first run hangs until it is killed; a redelivered run returns which run it was. Each run
        notes its pid, the AMQP redelivered flag and the x-delivery-count header (quorum queues)."""
        earlier = _lines(path)
        count = vars(self.request).get("x-delivery-count")  # Celery keeps unknown headers on the request
        _append(path, f"{os.getpid()} {_redelivered(self)} {count}")
        if not earlier:
            time.sleep(GATE_SECONDS)
        return len(earlier) + 1


app = make_app(
    os.environ.get("FERRYMQ_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//"),
    os.environ.get("FERRYMQ_CELERY_RESULTS", "rpc://"),
    os.environ.get("FERRYMQ_CELERY_QUEUE", "feat"),
    int(os.environ.get("FERRYMQ_CELERY_PREFETCH", "1")),
    os.environ.get("FERRYMQ_CELERY_QUEUE_TYPE", "classic"),
)
