"""Policies and operator policies applied live, the same calls against RabbitMQ 3.10 and FerryMQ: a
queue's message count after each change (its own x-max-length, a policy's, an operator policy's:
the smallest wins), the merged effective_policy_definition and the policy names /api/queues shows,
a queue declared after the operator policy, and the refusal of a key operator policies do not take.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

pytestmark = pytest.mark.rabbitmq
AUTH = ("guest", "guest")
SHOWN = ("policy", "operator_policy", "effective_policy_definition")


@pytest.fixture(scope="module")
def rabbit() -> Iterator[tuple[str, str]]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests skipped")
    node = start_rabbitmq(management=True)
    try:
        yield node.amqp_url, node.management_url
    finally:
        node.stop()


def _until(read: Callable[[], Any], done: Callable[[Any], bool]) -> Any:
    """RabbitMQ applies a policy change asynchronously and its queue stats lag by seconds: poll."""
    deadline = time.monotonic() + 15
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


class Side:
    def __init__(self, amqp_url: str, http: str) -> None:
        self.http = http
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.ch = self.conn.channel()

    def put(self, kind: str, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        r = requests.put(f"{self.http}/api/{kind}/%2F/{name}", json=body, auth=AUTH, timeout=10)
        return r.status_code, r.json() if r.content else None

    def delete(self, kind: str, name: str) -> int:
        return requests.delete(f"{self.http}/api/{kind}/%2F/{name}", auth=AUTH, timeout=10).status_code

    def publish(self, queue: str, n: int) -> None:
        for i in range(n):
            self.ch.basic_publish("", queue, str(i).encode())

    def count(self, queue: str, want: int) -> int:
        return _until(lambda: self.ch.queue_declare(queue, passive=True).method.message_count,  # type: ignore[no-any-return]
                      lambda n: n == want)

    def shown(self, queue: str, want: dict[str, Any]) -> dict[str, Any]:
        def read() -> dict[str, Any]:
            q = requests.get(f"{self.http}/api/queues/%2F/{queue}", auth=AUTH, timeout=10).json()
            return {k: q.get(k) for k in SHOWN}
        return _until(read, lambda v: v == want)  # type: ignore[no-any-return]


MERGED = {"policy": "opd-up", "operator_policy": "opd-op", "effective_policy_definition": {
    "max-length": 3, "message-ttl": 100000, "overflow": "drop-head", "expires": 900000}}
OPERATOR_ONLY = {"policy": None, "operator_policy": "opd-op", "effective_policy_definition": {
    "max-length": 4, "message-ttl": 500000, "expires": 900000}}


def _operator(max_length: int) -> dict[str, Any]:
    return {"pattern": "^opd-", "apply-to": "queues",
            "definition": {"max-length": max_length, "message-ttl": 500000, "expires": 900000}}


USER_POLICY = {"pattern": "^opd-", "apply-to": "queues", "priority": 1,
               "definition": {"max-length": 5, "message-ttl": 100000, "overflow": "drop-head"}}
BAD = {"pattern": ".*", "definition": {"overflow": "drop-head"}}


def _adding(side: Side) -> list[Any]:
    """Own limit, then a policy, then an operator policy over it, then the operator policy changed."""
    side.ch.queue_declare("opd-q", arguments={"x-max-length": 7})
    side.publish("opd-q", 10)
    seen: list[Any] = [side.count("opd-q", 7), side.put("policies", "opd-up", USER_POLICY)]
    seen.append(side.count("opd-q", 5))
    seen.append(side.put("operator-policies", "opd-op", _operator(3)))
    seen += [side.count("opd-q", 3), side.shown("opd-q", MERGED)]
    seen.append(side.put("operator-policies", "opd-op", _operator(4)))
    side.publish("opd-q", 3)
    seen.append(side.count("opd-q", 4))
    return seen


def _removing(side: Side) -> list[Any]:
    """The policy deleted (the operator policy alone), a queue declared under it, then it deleted."""
    seen: list[Any] = [side.delete("policies", "opd-up"), side.shown("opd-q", OPERATOR_ONLY)]
    side.ch.queue_declare("opd-new")
    side.publish("opd-new", 6)
    seen += [side.count("opd-new", 4), side.delete("operator-policies", "opd-op")]
    side.publish("opd-q", 5)
    seen += [side.count("opd-q", 7), side.put("operator-policies", "opd-bad", BAD)]
    return seen


def _scenario(side: Side) -> list[Any]:
    """Each step's observation; the counts the steps wait for are RabbitMQ's."""
    return _adding(side) + _removing(side)


def test_policies_and_operator_policies_apply_live_as_on_rabbitmq(rabbit: tuple[str, str]) -> None:
    theirs_side = Side(*rabbit)
    theirs = _scenario(theirs_side)
    theirs_side.conn.close()
    with EmbeddedBroker() as fm:
        ours_side = Side(fm.amqp_url, fm.http_url)
        ours = _scenario(ours_side)
        ours_side.conn.close()
    assert ours == theirs
    assert theirs[:3] == [7, (201, None), 5] and theirs[5] == MERGED and theirs[9] == OPERATOR_ONLY
    assert theirs[-1] == (400, {"error": "bad_request", "reason": (
        'Validation failed\n\n[{<<"overflow">>,<<"drop-head">>}] are not recognised policy settings\n')})
