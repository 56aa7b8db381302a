"""The Celery app and kombu settings the SQS-transport tests share (test_celery_sqs.py,
test_celery_sqs_keys.py, test_kombu_sqs.py).

kombu's SQS transport binds each channel to kombu's process-wide event loop (the hub) when one is
set, and a Celery worker sets its own there and leaves it behind when it stops. ``worker`` starts a
thread worker on a hub of its own and puts back what was there; ``no_hub`` keeps plain kombu
connections synchronous, whatever an earlier worker left.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Reject
from kombu.asynchronous import get_event_loop, set_event_loop

from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import sqs_client

QUEUE = "ferry-celery-sqs"
REDRIVEN = "ferry-celery-redriven"  # VisibilityTimeout 1 s, RedrivePolicy maxReceiveCount 2 -> DEAD
DEAD = "ferry-celery-dead"
TRANSPORT_OPTIONS = {
    "region": "us-east-1", "is_secure": False,
    "wait_time_seconds": 1,  # the worker's long poll: short, so the thread worker stops quickly
    "polling_interval": 0.1, "visibility_timeout": 60,
}


def broker_url(ferry: EmbeddedBroker, key: str = "ferry", secret: str = "ferry-secret") -> str:
    """kombu builds boto3's endpoint_url from this host and port (http: ``is_secure`` False)."""
    return f"sqs://{key}:{secret}@{ferry.settings.host}:{ferry.http_port}"


def queue_counts(ferry: EmbeddedBroker, name: str) -> tuple[str, str]:
    """(visible, in flight) as GetQueueAttributes reports them."""
    client = sqs_client(ferry.http_url)
    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]


@contextmanager
def no_hub() -> Iterator[None]:
    previous = get_event_loop()
    set_event_loop(None)
    try:
        yield
    finally:
        set_event_loop(previous)


@contextmanager
def worker(app: Celery) -> Iterator[None]:
    """A real worker (solo pool) in a thread of this process, on a hub of its own."""
    with no_hub(), start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
        yield


def make_app(url: str) -> Celery:
    app = Celery("ferrymq_celery_sqs", broker=url, set_as_current=False)
    app.conf.update(
        broker_transport_options=TRANSPORT_OPTIONS, result_backend="cache+memory://",
        task_default_queue=QUEUE, task_serializer="json", accept_content=["json"],
        worker_enable_remote_control=False, worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True, broker_connection_max_retries=3,
        task_queues=[kombu.Queue(QUEUE, routing_key=QUEUE), kombu.Queue(REDRIVEN, routing_key=REDRIVEN)],
        task_routes={"ferry.poison": {"queue": REDRIVEN, "routing_key": REDRIVEN}},
    )
    _tasks(app)
    return app


def _tasks(app: Celery) -> None:
    @app.task(name="ferry.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="ferry.flaky", shared=False, bind=True, max_retries=4)
    def flaky(self: Any, path: str) -> int:
        """Fails on its first two runs (retrying after 0.2 s), succeeds on the third."""
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{self.request.retries}\n")
        if self.request.retries < 2:
            raise self.retry(countdown=0.2, exc=RuntimeError("not yet"))
        return int(self.request.retries)

    @app.task(name="ferry.poison", shared=False, acks_late=True)
    def poison(path: str) -> None:
        """Rejected without requeue every time: kombu leaves it to the queue's redrive policy."""
        with open(path, "a", encoding="utf-8") as f:
            f.write("run\n")
        raise Reject("poison", requeue=False)

    @app.task(name="ferry.stamp", shared=False)
    def stamp() -> float:
        return time.time()
