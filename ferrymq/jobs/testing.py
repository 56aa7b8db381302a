"""Running jobs inside a user's own tests.

``App("eager://")`` runs each job in place when it is sent, through the same processor (and so
the same middleware, retry and dead-letter logic) a worker uses; retries run at once, with
their would-be delays recorded. ``worker_thread`` runs a real worker in this process against a
broker (an ``EmbeddedBroker``, a ``ferrymq serve`` or RabbitMQ) until the test is done with it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.processor import Processor

if TYPE_CHECKING:
    from ferrymq.jobs.app import App
    from ferrymq.jobs.worker import Worker

EAGER_DEPTH_MAX = 100  # retries followed in place before an eager run gives up


def run_eagerly(app: App, message: JobMessage) -> None:
    processor = Processor(app, "eager")
    ctx, outcome = processor.run(message)
    processor.settle(ctx, outcome)


def eager_publish(app: App, message: JobMessage, delay_ms: int, dead: bool,
                  headers: dict[str, Any] | None) -> None:
    """A retry runs at once (``app.eager_reruns`` keeps it with its delay); a dead letter is kept
    on ``app.eager_dead`` for the test to read."""
    if dead:
        app.eager_dead.append((message, headers or {}))
        return
    app.eager_reruns.append((message, delay_ms))
    if len(app.eager_reruns) > EAGER_DEPTH_MAX:
        raise RuntimeError(f"eager mode: more than {EAGER_DEPTH_MAX} re-runs; is a job deferring forever?")
    run_eagerly(app, message)


@contextmanager
def worker_thread(app: App, concurrency: int = 4, queues: list[str] | None = None) -> Iterator[Worker]:
    """A worker running in a thread of this process; stopped (drained) on exit."""
    from ferrymq.jobs.worker import Worker, WorkerConfig

    worker = Worker(app, WorkerConfig(concurrency=concurrency, queues=queues))
    thread = threading.Thread(target=worker.run, name="ferrymq-jobs-worker", daemon=True)
    thread.start()
    worker.wait_started()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=30)
