"""SQS's clocks on a broker driven by a ManualClock: the 5-minute deduplication window and the
visibility timeout end when the clock says so, not when a test has waited that long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from ferrymq.clock import ManualClock
from ferrymq.testing import EmbeddedBroker
from tests.support.sqs import sqs_client

WINDOW_MS = 5 * 60 * 1000


@pytest.fixture(scope="module")
def clocked() -> Iterator[tuple[Any, ManualClock]]:
    clock = ManualClock()
    with EmbeddedBroker(clock=clock) as broker:
        yield sqs_client(broker.http_url), clock


def test_a_duplicate_is_dropped_inside_the_window_and_accepted_after_it(clocked: Any) -> None:
    sqs, clock = clocked
    url = sqs.create_queue(QueueName="window.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    send = {"QueueUrl": url, "MessageBody": "pay", "MessageGroupId": "g", "MessageDeduplicationId": "p1"}
    first = sqs.send_message(**send)
    clock.advance(WINDOW_MS - 1)
    assert sqs.send_message(**send)["MessageId"] == first["MessageId"]
    clock.advance(2)
    later = sqs.send_message(**send)
    assert later["MessageId"] != first["MessageId"]
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    assert bodies == ["pay", "pay"]


def test_a_message_comes_back_when_the_clock_passes_its_visibility_timeout(clocked: Any) -> None:
    sqs, clock = clocked
    url = sqs.create_queue(QueueName="vis-clock")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="m")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=3600)
    clock.advance(3_599_000)
    assert "Messages" not in sqs.receive_message(QueueUrl=url)
    clock.advance(1_000)
    deadline = time.monotonic() + 5  # the broker's timer notices the new time within a tick
    got: list[Any] = []
    while not got and time.monotonic() < deadline:
        reply = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])
        got = reply.get("Messages", [])
    assert got and got[0]["Attributes"]["ApproximateReceiveCount"] == "2"
