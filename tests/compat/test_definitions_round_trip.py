"""Definitions round trip RabbitMQ 3.10 -> FerryMQ -> a fresh RabbitMQ 3.10: a rich topology built on
the first node (users with tags, a password and limits; vhost limits; permissions and topic
permissions; policies and operator policies; global parameters; classic, quorum and stream queues
with arguments; exchanges of every built-in type, internal and auto-delete ones, an alternate
exchange; exchange-to-exchange and headers bindings) is exported, imported into FerryMQ, exported
from FerryMQ, imported into a second node and exported again. The proof: the last export equals
the first minus exactly what FerryMQ's import report said it dropped (a shovel parameter, added as
a node with the shovel plugin would export it: the oracle has no plugins, and FerryMQ keeps every
other section it writes), and a user imported with its RabbitMQ password hash logs in (pika) on
FerryMQ and on the second node."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import RabbitNode, available, start_rabbitmq

pytestmark = pytest.mark.rabbitmq
AUTH = ("guest", "guest")
SHOVEL = {"value": {"src-uri": "amqp://", "src-queue": "rt-classic", "dest-uri": "amqp://",
                    "dest-queue": "rt-lazy"}, "vhost": "rt-v", "component": "shovel", "name": "rt-shovel"}
VERSION_KEYS = ("rabbit_version", "rabbitmq_version", "product_name", "product_version")


@pytest.fixture
def rabbit_factory() -> Iterator[Any]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests skipped")
    nodes: list[RabbitNode] = []

    def start() -> RabbitNode:
        nodes.append(start_rabbitmq(management=True))
        return nodes[-1]
    try:
        yield start
    finally:
        for node in nodes:
            node.stop()


def _call(base: str, method: str, path: str, body: Any = None) -> requests.Response:
    r = requests.request(method, base + path, json=body, auth=AUTH, timeout=30)
    assert r.status_code in (200, 201, 204), (method, path, r.status_code, r.text)
    return r


PUTS: list[tuple[str, dict[str, Any]]] = [
    ("/api/vhosts/rt-v", {"description": "round trip", "tags": "alpha,beta"}),
    ("/api/users/rt-user", {"password": "rt-secret", "tags": "monitoring,policymaker"}),
    ("/api/users/rt-bare", {"password": "bare", "tags": ""}),
    ("/api/user-limits/rt-user/max-connections", {"value": 10}),
    ("/api/permissions/rt-v/rt-user", {"configure": "^rt-", "write": ".*", "read": "^rt-"}),
    ("/api/permissions/rt-v/guest", {"configure": ".*", "write": ".*", "read": ".*"}),
    ("/api/topic-permissions/rt-v/rt-user", {"exchange": "amq.topic", "write": "^a", "read": "^b"}),
    ("/api/vhost-limits/rt-v/max-queues", {"value": 100}),
    ("/api/global-parameters/cluster_name", {"value": "rt-cluster"}),
    ("/api/policies/rt-v/rt-pol", {"pattern": "^rt-c", "apply-to": "queues", "priority": 3,
                                   "definition": {"max-length": 50, "dead-letter-exchange": "rt-fan"}}),
    ("/api/policies/rt-v/rt-expol", {"pattern": "^rt-topic$", "apply-to": "exchanges",
                                     "definition": {"alternate-exchange": "rt-fan"}}),
    ("/api/policies/%2F/root-all", {"pattern": "^all-", "apply-to": "all", "priority": 1,
                                    "definition": {"message-ttl": 60000}}),
    ("/api/operator-policies/rt-v/rt-op", {"pattern": "^rt-", "apply-to": "queues", "priority": 2,
                                           "definition": {"max-length": 20, "expires": 3600000}}),
    ("/api/exchanges/rt-v/rt-topic", {"type": "topic", "durable": True}),
    ("/api/exchanges/rt-v/rt-fan", {"type": "fanout", "durable": False, "auto_delete": True}),
    ("/api/exchanges/rt-v/rt-int", {"type": "direct", "durable": True, "internal": True}),
    ("/api/exchanges/rt-v/rt-headers", {"type": "headers", "durable": True,
                                        "arguments": {"alternate-exchange": "rt-fan"}}),
    ("/api/queues/rt-v/rt-classic", {"durable": True, "arguments": {
        "x-max-length": 10, "x-overflow": "reject-publish", "x-message-ttl": 60000,
        "x-dead-letter-exchange": "rt-fan", "x-max-priority": 5}}),
    ("/api/queues/rt-v/rt-quorum", {"durable": True, "arguments": {"x-queue-type": "quorum",
                                                                   "x-delivery-limit": 3}}),
    ("/api/queues/rt-v/rt-stream", {"durable": True, "arguments": {
        "x-queue-type": "stream", "x-max-age": "1D", "x-max-length-bytes": 10_000_000}}),
    ("/api/queues/rt-v/rt-lazy", {"durable": False, "auto_delete": False,
                                  "arguments": {"x-queue-mode": "lazy"}}),
]
BINDINGS = [
    ("/api/bindings/rt-v/e/rt-topic/e/rt-int", {"routing_key": "a.#"}),
    ("/api/bindings/rt-v/e/rt-int/q/rt-classic", {"routing_key": "k"}),
    ("/api/bindings/rt-v/e/rt-fan/q/rt-lazy", {"routing_key": ""}),
    ("/api/bindings/rt-v/e/rt-headers/q/rt-quorum",
     {"routing_key": "", "arguments": {"x-match": "any", "a": "1"}}),
]


def _build(base: str) -> None:
    for path, body in PUTS:
        _call(base, "PUT", path, body)
    for path, body in BINDINGS:
        _call(base, "POST", path, body)


def _sorted(defs: dict[str, Any]) -> dict[str, Any]:
    """Every section as a sorted list, the version fields left out (FerryMQ names its own)."""
    return {k: sorted((json.dumps(i, sort_keys=True) for i in v), key=str) if isinstance(v, list) else v
            for k, v in defs.items() if k not in VERSION_KEYS}


def _without(defs: dict[str, Any], dropped: list[dict[str, Any]]) -> dict[str, Any]:
    """``defs`` less the items the report names."""
    out = copy.deepcopy(defs)
    for d in dropped:
        section = out[d["section"]]
        for item in list(section):
            name = f"{item['component']}/{item['name']}" if d["section"] == "parameters" else item.get("name")
            if name != d["name"] or item.get("vhost") != d.get("vhost", item.get("vhost")):
                continue
            section.remove(item)
    return out


def _login(port: int, user: str, password: str, vhost: str) -> None:
    params = pika.ConnectionParameters("127.0.0.1", port, vhost, pika.PlainCredentials(user, password))
    pika.BlockingConnection(params).close()


def test_round_trip_keeps_all_ferrymq_supports_and_drops_exactly_what_it_reports(rabbit_factory: Any) -> None:
    first = rabbit_factory()
    _build(first.management_url)
    from_rabbit = _call(first.management_url, "GET", "/api/definitions").json()
    first.stop()
    from_rabbit["parameters"].append(SHOVEL)  # as a node with the shovel plugin would export it
    with EmbeddedBroker() as fm:
        r = _call(fm.http_url, "POST", "/api/definitions", from_rabbit)
        dropped = r.json()["dropped"] if r.status_code == 200 else []
        from_ferry = _call(fm.http_url, "GET", "/api/definitions").json()
        _login(fm.amqp_port, "rt-user", "rt-secret", "rt-v")
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            _login(fm.amqp_port, "rt-user", "wrong", "rt-v")
    assert dropped == [{"section": "parameters", "name": "shovel/rt-shovel", "vhost": "rt-v",
                        "reason": "FerryMQ has no shovel plugin"}]
    expected = _sorted(_without(from_rabbit, dropped))
    assert _sorted(from_ferry) == expected
    second = rabbit_factory()
    _call(second.management_url, "POST", "/api/definitions", from_ferry)
    again = _call(second.management_url, "GET", "/api/definitions").json()
    assert _sorted(again) == expected
    _login(second.port, "rt-user", "rt-secret", "rt-v")
