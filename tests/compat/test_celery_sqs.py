"""Celery with its SQS transport (kombu[sqs], pycurl async client) against FerryMQ's SQS endpoint.

The broker URL ``sqs://key:secret@127.0.0.1:<http port>`` makes kombu point boto3 at FerryMQ
(kombu builds ``endpoint_url`` from the URL's host and port; ``is_secure: False`` makes it http).
A real worker runs in a thread of this process (celery.contrib.testing.worker.start_worker), so the
``cache+memory://`` result backend is shared by caller and worker and needs no other service.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import kombu
import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.exceptions import Reject

from ferrymq.testing import EmbeddedBroker

QUEUE = "ferry-celery-sqs"
REDRIVEN = "ferry-celery-redriven"  # VisibilityTimeout 1 s, RedrivePolicy maxReceiveCount 2 -> DEAD
DEAD = "ferry-celery-dead"
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
        task_queues=[kombu.Queue(QUEUE, routing_key=QUEUE), kombu.Queue(REDRIVEN, routing_key=REDRIVEN)],
        task_routes={"ferry.poison": {"queue": REDRIVEN, "routing_key": REDRIVEN}},
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

    @app.task(name="ferry.poison", shared=False, acks_late=True)
    def poison(path: str) -> None:
        """Rejected without requeue every time: kombu leaves it to the queue's redrive policy."""
        with open(path, "a", encoding="utf-8") as f:
            f.write("run\n")
        raise Reject("poison", requeue=False)

    @app.task(name="ferry.stamp", shared=False)
    def stamp() -> float:
        return time.time()

    return app


def _sqs(ferry: EmbeddedBroker) -> Any:
    return boto3.client("sqs", endpoint_url=ferry.http_url, region_name="us-east-1",
                        aws_access_key_id="ferry", aws_secret_access_key="ferry-secret")


def _make_redrive_queues(ferry: EmbeddedBroker) -> None:
    """Made before the worker starts, as infrastructure code would: kombu finds them by ListQueues."""
    client = _sqs(ferry)
    dead = client.create_queue(QueueName=DEAD)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2})
    client.create_queue(QueueName=REDRIVEN, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": policy})


@pytest.fixture(scope="module")
def app(ferry: EmbeddedBroker) -> Iterator[Celery]:
    _make_redrive_queues(ferry)
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
    client = _sqs(ferry)
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


def test_a_rejected_task_is_redelivered_then_moved_to_the_dead_letter_queue(app, ferry, tmp_path):
    runs = tmp_path / "runs.txt"
    result = app.tasks["ferry.poison"].delay(str(runs))
    client = _sqs(ferry)
    dead = client.get_queue_url(QueueName=DEAD)["QueueUrl"]
    reply = client.receive_message(QueueUrl=dead, WaitTimeSeconds=20)
    [moved] = reply["Messages"]
    envelope = json.loads(base64.b64decode(moved["Body"]))  # kombu's base64'd JSON envelope
    assert envelope["headers"]["id"] == result.id
    assert runs.read_text().split() == ["run", "run"]  # maxReceiveCount 2: two runs, then the DLQ


def _drain(conn: kombu.Connection, queue: kombu.Queue, want: int) -> list[tuple[Any, kombu.Message]]:
    """Consume until ``want`` messages arrived (acking each) or 20 s passed."""
    received: list[tuple[Any, kombu.Message]] = []

    def on_message(body: Any, message: kombu.Message) -> None:
        received.append((body, message))
        message.ack()

    with conn.Consumer(queue, callbacks=[on_message], accept=["json"]):
        deadline = time.monotonic() + 20
        while len(received) < want and time.monotonic() < deadline:
            try:
                conn.drain_events(timeout=2)
            except TimeoutError:
                pass
    return received


def test_kombu_producer_and_consumer_over_the_sqs_transport(ferry: EmbeddedBroker):
    queue = kombu.Queue("ferry-kombu-sqs", routing_key="ferry-kombu-sqs")
    with kombu.Connection(_broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        with conn.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n, "text": "héllo"}, routing_key=queue.name, declare=[queue],
                                 headers={"origin": "kombu"}, serializer="json")
        received = _drain(conn, queue, 3)
    assert sorted(b["n"] for b, _ in received) == [0, 1, 2]
    assert all(b["text"] == "héllo" and m.headers.get("origin") == "kombu" for b, m in received)
    assert _queue_counts(ferry, "ferry-kombu-sqs") == ("0", "0")  # each ack was a DeleteMessage


def test_kombu_fifo_queue_delivers_a_group_in_publish_order(ferry: EmbeddedBroker):
    queue = kombu.Queue("ferry-kombu.fifo", routing_key="ferry-kombu.fifo")
    with kombu.Connection(_broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        with conn.Producer() as producer:
            for n in range(6):
                producer.publish({"n": n}, routing_key=queue.name, declare=[queue], serializer="json",
                                 MessageGroupId=f"g{n % 2}")
        received = _drain(conn, queue, 6)
    by_group: dict[int, list[int]] = {0: [], 1: []}
    for body, _ in received:
        by_group[body["n"] % 2].append(body["n"])
    assert by_group == {0: [0, 2, 4], 1: [1, 3, 5]}


def test_kombu_predefined_queue_with_a_per_message_delay(ferry: EmbeddedBroker):
    client = boto3.client("sqs", endpoint_url=ferry.http_url, region_name="us-east-1",
                          aws_access_key_id="ferry", aws_secret_access_key="ferry-secret")
    url = client.create_queue(QueueName="ferry-predefined")["QueueUrl"]
    options = dict(TRANSPORT_OPTIONS, predefined_queues={"ferry-predefined": {
        "url": url, "access_key_id": "other", "secret_access_key": "other-secret"}})
    queue = kombu.Queue("ferry-predefined", routing_key="ferry-predefined")
    with kombu.Connection(_broker_url(ferry), transport_options=options) as conn:
        with conn.Producer() as producer:
            producer.publish({"n": "later"}, routing_key=queue.name, serializer="json", delay_seconds=1)
        assert client.receive_message(QueueUrl=url).get("Messages", []) == []  # still delayed
        received = _drain(conn, queue, 1)
    assert [b for b, _ in received] == [{"n": "later"}]


def test_kombu_deletes_a_rejected_message_once_the_queues_redrive_policy_was_removed(ferry):
    """kombu leaves a rejected message to SQS only while GetQueueAttributes lists a RedrivePolicy;
    AWS stops listing it once SetQueueAttributes sets it to the empty string."""
    client = _sqs(ferry)
    client.create_queue(QueueName="ferry-kombu-unredriven-dlq")
    dead_arn = "arn:aws:sqs:us-east-1:000000000000:ferry-kombu-unredriven-dlq"
    url = client.create_queue(QueueName="ferry-kombu-unredriven", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dead_arn, "maxReceiveCount": 5})})["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    queue = kombu.Queue("ferry-kombu-unredriven", routing_key="ferry-kombu-unredriven")
    with kombu.Connection(_broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        conn.Producer().publish({"n": 1}, routing_key=queue.name, serializer="json")
        with conn.SimpleQueue(queue) as simple:
            simple.get(timeout=10).reject(requeue=False)
    assert _queue_counts(ferry, "ferry-kombu-unredriven") == ("0", "0")
