"""kombu's SQS transport used directly (no Celery) against FerryMQ: producer and consumer, FIFO
groups, predefined queues with their own credentials and a per-message delay, reject semantics.
Every test runs with no kombu hub, so the transport stays synchronous whatever ran before."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import kombu
import pytest

from ferrymq.testing import EmbeddedBroker
from tests.compat.celery_sqs_app import TRANSPORT_OPTIONS, broker_url, no_hub, queue_counts
from tests.support.sqs import sqs_client


@pytest.fixture(autouse=True)
def _synchronous() -> Iterator[None]:
    with no_hub():
        yield


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
    with kombu.Connection(broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        with conn.Producer() as producer:
            for n in range(3):
                producer.publish({"n": n, "text": "héllo"}, routing_key=queue.name, declare=[queue],
                                 headers={"origin": "kombu"}, serializer="json")
        received = _drain(conn, queue, 3)
    assert sorted(b["n"] for b, _ in received) == [0, 1, 2]
    assert all(b["text"] == "héllo" and m.headers.get("origin") == "kombu" for b, m in received)
    assert queue_counts(ferry, "ferry-kombu-sqs") == ("0", "0")  # each ack was a DeleteMessage


def test_kombu_fifo_queue_delivers_a_group_in_publish_order(ferry: EmbeddedBroker):
    queue = kombu.Queue("ferry-kombu.fifo", routing_key="ferry-kombu.fifo")
    with kombu.Connection(broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
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
    client = sqs_client(ferry.http_url)
    url = client.create_queue(QueueName="ferry-predefined")["QueueUrl"]
    options = dict(TRANSPORT_OPTIONS, predefined_queues={"ferry-predefined": {
        "url": url, "access_key_id": "other", "secret_access_key": "other-secret"}})
    queue = kombu.Queue("ferry-predefined", routing_key="ferry-predefined")
    with kombu.Connection(broker_url(ferry), transport_options=options) as conn:
        with conn.Producer() as producer:
            producer.publish({"n": "later"}, routing_key=queue.name, serializer="json", delay_seconds=1)
        assert client.receive_message(QueueUrl=url).get("Messages", []) == []  # still delayed
        received = _drain(conn, queue, 1)
    assert [b for b, _ in received] == [{"n": "later"}]


def test_kombu_deletes_a_rejected_message_once_the_queues_redrive_policy_was_removed(ferry):
    """kombu leaves a rejected message to SQS only while GetQueueAttributes lists a RedrivePolicy;
    AWS stops listing it once SetQueueAttributes sets it to the empty string."""
    client = sqs_client(ferry.http_url)
    client.create_queue(QueueName="ferry-kombu-unredriven-dlq")
    dead_arn = "arn:aws:sqs:us-east-1:000000000000:ferry-kombu-unredriven-dlq"
    url = client.create_queue(QueueName="ferry-kombu-unredriven", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dead_arn, "maxReceiveCount": 5})})["QueueUrl"]
    client.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    queue = kombu.Queue("ferry-kombu-unredriven", routing_key="ferry-kombu-unredriven")
    with kombu.Connection(broker_url(ferry), transport_options=TRANSPORT_OPTIONS) as conn:
        conn.Producer().publish({"n": 1}, routing_key=queue.name, serializer="json")
        with conn.SimpleQueue(queue) as simple:
            simple.get(timeout=10).reject(requeue=False)
    assert queue_counts(ferry, "ferry-kombu-unredriven") == ("0", "0")


