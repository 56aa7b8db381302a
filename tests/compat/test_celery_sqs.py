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

import pytest
from celery import Celery

from ferrymq.testing import EmbeddedBroker
from tests.compat.celery_sqs_app import DEAD, QUEUE, REDRIVEN, broker_url, make_app, queue_counts, worker
from tests.support.sqs import sqs_client


def _make_redrive_queues(ferry: EmbeddedBroker) -> None:
    """Made before the worker starts, as infrastructure code would: kombu finds them by ListQueues."""
    client = sqs_client(ferry.http_url)
    dead = client.create_queue(QueueName=DEAD)["QueueUrl"]
    arn = client.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2})
    client.create_queue(QueueName=REDRIVEN, Attributes={"VisibilityTimeout": "1", "RedrivePolicy": policy})


@pytest.fixture(scope="module")
def app(ferry: EmbeddedBroker) -> Iterator[Celery]:
    _make_redrive_queues(ferry)
    celery_app = make_app(broker_url(ferry))
    try:
        with worker(celery_app):
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


def test_many_tasks_complete_and_their_messages_are_deleted_from_the_sqs_queue(app, ferry):
    results = [app.tasks["ferry.add"].delay(n, n) for n in range(20)]
    assert [r.get(timeout=30) for r in results] == [2 * n for n in range(20)]
    deadline = time.monotonic() + 10  # the worker's DeleteMessage calls may trail the results
    while queue_counts(ferry, QUEUE) != ("0", "0") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue_counts(ferry, QUEUE) == ("0", "0")


def test_a_rejected_task_is_redelivered_then_moved_to_the_dead_letter_queue(app, ferry, tmp_path):
    runs = tmp_path / "runs.txt"
    result = app.tasks["ferry.poison"].delay(str(runs))
    client = sqs_client(ferry.http_url)
    dead = client.get_queue_url(QueueName=DEAD)["QueueUrl"]
    reply = client.receive_message(QueueUrl=dead, WaitTimeSeconds=20)
    [moved] = reply["Messages"]
    envelope = json.loads(base64.b64decode(moved["Body"]))  # kombu's base64'd JSON envelope
    assert envelope["headers"]["id"] == result.id
    assert runs.read_text().split() == ["run", "run"]  # maxReceiveCount 2: two runs, then the DLQ
