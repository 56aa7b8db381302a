"""Celery with its SQS transport (kombu[sqs], pycurl async client) against FerryMQ's SQS endpoint.

The broker URL ``sqs://key:secret@127.0.0.1:<http port>`` makes kombu point boto3 at FerryMQ
(kombu builds ``endpoint_url`` from the URL's host and port; ``is_secure: False`` makes it http).
A real worker runs in a thread of this process (celery.contrib.testing.worker.start_worker), so the
``cache+memory://`` result backend is shared by caller and worker and needs no other service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import kombu
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

from ferrymq.testing import EmbeddedBroker

QUEUE = "ferry-celery-sqs"
TRANSPORT_OPTIONS = {
    "region": "us-east-1", "is_secure": False,
    "wait_time_seconds": 1,  # the worker's long poll: short, so the thread worker stops quickly
    "polling_interval": 0.1, "visibility_timeout": 60,
}


def _broker_url(ferry: EmbeddedBroker) -> str:
    return f"sqs://ferry:ferry-secret@{ferry.settings.host}:{ferry.http_port}"


def _make_app(ferry: EmbeddedBroker) -> Celery:
    app = Celery("ferrymq_celery_sqs", broker=_broker_url(ferry), set_as_current=False)
    app.conf.update(
        broker_transport_options=TRANSPORT_OPTIONS, result_backend="cache+memory://",
        task_default_queue=QUEUE, task_serializer="json", accept_content=["json"],
        worker_enable_remote_control=False, worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True, broker_connection_max_retries=3,
    )

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

    @app.task(name="ferry.stamp", shared=False)
    def stamp() -> float:
        return time.time()

    return app


@pytest.fixture(scope="module")
def app(ferry: EmbeddedBroker) -> Iterator[Celery]:
    celery_app = _make_app(ferry)
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=20):
            yield celery_app
    finally:
        celery_app.close()


def test_task_result_round_trips_through_sqs_and_the_worker(app):
    assert app.tasks["ferry.add"].delay(2, 40).get(timeout=20) == 42


def test_failing_task_retries_through_sqs_until_it_succeeds(app, tmp_path):
    attempts = tmp_path / "attempts.txt"
    assert app.tasks["ferry.flaky"].delay(str(attempts)).get(timeout=30) == 2
    assert attempts.read_text().split() == ["0", "1", "2"]


def test_countdown_task_runs_no_earlier_than_its_eta(app):
    sent_at = time.time()
    ran_at = app.tasks["ferry.stamp"].apply_async(countdown=1.5).get(timeout=20)
    assert ran_at >= sent_at + 1.5  # Celery holds the message until the ETA; never before it


def _queue_counts(ferry: EmbeddedBroker, name: str) -> tuple[str, str]:
    client = boto3.client("sqs", endpoint_url=ferry.http_url, region_name="us-east-1",
                          aws_access_key_id="ferry", aws_secret_access_key="ferry-secret")
    url = client.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]


def test_many_tasks_complete_and_their_messages_are_deleted_from_the_sqs_queue(app, ferry):
    results = [app.tasks["ferry.add"].delay(n, n) for n in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * n for n in range(20)]
    deadline = time.monotonic() + 10  # the worker's DeleteMessage calls may trail the results
    while _queue_counts(ferry, QUEUE) != ("0", "0") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _queue_counts(ferry, QUEUE) == ("0", "0")


def test_kombu_producer_and_consumer_over_the_sqs_transport(ferry: EmbeddedBroker, tmp_path: Path):
    queue = kombu.Queue("ferry-kombu-sqs", routing_key="ferry-kombu-sqs")
    received: list[Any] = []
    with kombu.Connection(_broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        with conn.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n, "text": "héllo"}, routing_key=queue.name, declare=[queue],
                                 headers={"origin": "kombu"}, serializer="json")

        def on_message(body: Any, message: kombu.Message) -> None:
            received.append((body, message.headers.get("origin")))
            message.ack()

        with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
            deadline = time.monotonic() + 20
            while len(received) < 3 and time.monotonic() < deadline:
                try:
                    conn.drain_events(timeout=2)
                except TimeoutError:
                    pass
    assert sorted(b["n"] for b, _ in received) == [0, 1, 2]
    assert all(b["text"] == "héllo" and origin == "kombu" for b, origin in received)
