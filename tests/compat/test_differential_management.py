"""The same management API calls against RabbitMQ 3.10 and FerryMQ: what tools read must agree
(status codes, the keys of the objects, counts, routed flags, payloads, error bodies). Node-specific
values (node names, memory, timestamps, ports) are left out of the comparison."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

pytestmark = pytest.mark.rabbitmq
AUTH = ("guest", "guest")
# Keys tools read from each object (rabbitmqadmin's columns, Flower, dashboards, monitoring scripts).
QUEUE_KEYS = {"name", "vhost", "durable", "auto_delete", "exclusive", "arguments", "node", "state",
              "type", "messages", "messages_ready", "messages_unacknowledged", "consumers",
              "consumer_utilisation", "memory", "message_bytes", "idle_since", "policy",
              "exclusive_consumer_tag", "effective_policy_definition", "operator_policy"}
EXCHANGE_KEYS = {"name", "vhost", "type", "durable", "auto_delete", "internal", "arguments"}
BINDING_KEYS = {"source", "vhost", "destination", "destination_type", "routing_key", "arguments",
                "properties_key"}
GET_KEYS = {"payload_bytes", "redelivered", "exchange", "routing_key", "message_count", "properties",
            "payload", "payload_encoding"}


@pytest.fixture(scope="module")
def rabbit_api() -> Iterator[str]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    node = start_rabbitmq(management=True)
    try:
        yield node.management_url + "/api"
    finally:
        node.stop()


@pytest.fixture(scope="module")
def ferry_api() -> Iterator[str]:
    with EmbeddedBroker() as b:
        yield b.http_url + "/api"


def _wait_ready(api: str, path: str, ready: int) -> dict[str, Any]:
    """RabbitMQ's stats arrive every 5 s: poll until the queue shows the count (FerryMQ at once)."""
    deadline = time.monotonic() + 15
    while True:
        q: dict[str, Any] = requests.get(api + path, auth=AUTH).json()
        if q.get("messages_ready") == ready or time.monotonic() > deadline:
            return q
        time.sleep(0.25)


def _shape(obj: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    """Which tool-read keys are present, and the values that are not node-specific."""
    volatile = {"node", "memory", "idle_since", "consumer_utilisation", "message_bytes"}
    return {k: (obj[k] if k not in volatile else "<present>") for k in keys if k in obj}


def scenario(api: str) -> list[Any]:
    """One sequence of calls; returns everything a tool would read from the answers."""
    seen: list[Any] = []
    put, post, get, delete = (lambda p, **kw: requests.put(api + p, auth=AUTH, **kw),
                              lambda p, **kw: requests.post(api + p, auth=AUTH, **kw),
                              lambda p, **kw: requests.get(api + p, auth=AUTH, **kw),
                              lambda p, **kw: requests.delete(api + p, auth=AUTH, **kw))
    seen.append(put("/queues/%2F/diff-q", json={"durable": True}).status_code)
    seen.append(put("/queues/%2F/diff-q", json={"durable": True}).status_code)
    r = put("/queues/%2F/diff-q", json={"durable": False})
    seen.append((r.status_code, r.json()))
    seen.append(put("/exchanges/%2F/diff-x", json={"type": "direct", "durable": True}).status_code)
    r = put("/exchanges/%2F/diff-x", json={"type": "fanout", "durable": True})
    seen.append((r.status_code, r.json()))
    r = post("/bindings/%2F/e/diff-x/q/diff-q", json={"routing_key": "k", "arguments": {}})
    seen.append((r.status_code, r.headers.get("Location")))
    for i in range(3):
        r = post("/exchanges/%2F/diff-x/publish", json={
            "properties": {"delivery_mode": 2, "headers": {"n": i}}, "routing_key": "k",
            "payload": f"m{i}", "payload_encoding": "string"})
        seen.append((r.status_code, r.json()))
    r = post("/exchanges/%2F/diff-x/publish", json={"properties": {}, "routing_key": "nope",
                                                   "payload": "x", "payload_encoding": "string"})
    seen.append(r.json())
    seen.append(_shape(_wait_ready(api, "/queues/%2F/diff-q", 3), QUEUE_KEYS))
    r = post("/queues/%2F/diff-q/get", json={"count": 2, "ackmode": "ack_requeue_true", "encoding": "auto"})
    seen.append([_shape(m, GET_KEYS) for m in r.json()])
    r = post("/queues/%2F/diff-q/get",
             json={"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"})
    seen.append([_shape(m, GET_KEYS) for m in r.json()])
    seen.append(_shape(get("/exchanges/%2F/diff-x").json(), EXCHANGE_KEYS))
    seen.append(_shape(get("/exchanges/%2F/amq.default").json(), EXCHANGE_KEYS))
    seen.append(sorted(tuple(sorted(_shape(b, BINDING_KEYS).items())) for b in
                       get("/queues/%2F/diff-q/bindings").json()))
    names = {q["name"] for q in get("/queues").json()}
    seen.append("diff-q" in names)
    seen.append(get("/queues?page=1&page_size=1&name=diff-q").json()["filtered_count"])
    seen.append(get("/queues?page=7").json()["error"])
    seen.append("diff-q" in {q["name"] for q in get("/queues?name=zzz").json()})  # unpaged: no filter
    r = delete("/exchanges/%2F/diff-x?if-unused=true")
    seen.append((r.status_code, r.json()))
    r = post("/queues/%2F/missing/get", json={"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
    seen.append((r.status_code, r.json()))
    r = put("/queues/%2F/diff-badarg", json={"arguments": {"x-max-length": "bad"}})
    seen.append(r.status_code)  # RabbitMQ's HTTP text here ("expected integer, got longstr") is not AMQP's
    r = put("/queues/%2F/amq.reserved", json={})
    seen.append((r.status_code, r.json()))
    seen.append(delete("/queues/%2F/diff-q/contents").status_code)
    r = post("/queues/%2F/diff-q/get", json={"count": 1, "ackmode": "ack_requeue_true", "encoding": "auto"})
    seen.append(r.json())  # purged: nothing left (stats would take RabbitMQ 5 s to show it)
    for path in ("/queues/%2F/missing", "/exchanges/%2F/missing", "/queues/nohost"):
        r = get(path)
        seen.append((path, r.status_code, r.json()))
    r = put("/queues/%2F/diff-bad", data=b"{nope", headers={"content-type": "application/json"})
    seen.append((r.status_code, r.json()))
    seen.append(delete("/exchanges/%2F/diff-x").status_code)
    seen.append(delete("/queues/%2F/diff-q").status_code)
    seen.append(delete("/queues/%2F/diff-q").status_code)
    return seen


def test_management_calls_answer_as_rabbitmq_does(rabbit_api: str, ferry_api: str) -> None:
    expected, actual = scenario(rabbit_api), scenario(ferry_api)
    for i, (want, got) in enumerate(zip(expected, actual, strict=True)):
        assert got == want, f"step {i}"
