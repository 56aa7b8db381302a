"""``kafka_sasl_required``: the Kafka listener acts as Kafka's SASL_PLAINTEXT one. A client that does
not log in may ask ApiVersions and start SaslHandshake, and the first other request closes its
connection; confluent-kafka without credentials fails with a transport error, with them it produces
and consumes."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from ferrymq.protocols.kafka import versions
from ferrymq.testing import EmbeddedBroker
from tests.support.kafka import Raw

pytestmark = pytest.mark.timeout(60)
DISCONNECTED = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}  # librdkafka's words for a close


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(kafka_sasl_required=True) as b:
        core = b.running.broker  # type: ignore[union-attr]
        b.call(core.put_user, "alice", "alice-pw")
        b.call(core.set_permission, "/", "alice", {"configure": ".*", "write": ".*", "read": ".*"})
        yield b


def _sasl(mechanism: str = "SCRAM-SHA-512") -> dict[str, str]:
    return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": mechanism,
            "sasl.username": "alice", "sasl.password": "alice-pw"}


def _produce(broker: EmbeddedBroker, topic: str, auth: dict[str, str]) -> tuple[list[Any], list[int]]:
    """(delivery results, the error codes librdkafka reported) for one record."""
    seen: list[int] = []
    delivered: list[Any] = []
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{broker.kafka_port}", "message.timeout.ms": "8000",
                         "error_cb": lambda e: seen.append(e.code()), **auth})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: delivered.append(err))
    deadline = time.monotonic() + 10
    while producer.flush(0.1) and time.monotonic() < deadline:
        if not auth and DISCONNECTED.intersection(seen):
            break
    return delivered, seen


def test_confluent_kafka_without_credentials_is_disconnected_and_delivers_nothing(broker):
    topic = f"req-{uuid.uuid4().hex[:8]}"
    delivered, seen = _produce(broker, topic, {})
    assert DISCONNECTED.intersection(seen), seen
    assert None not in delivered  # never acknowledged
    assert broker.call(broker.running.kafka.apis.topics.get, topic) is None  # not even auto-created


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_confluent_kafka_with_credentials_produces_and_consumes(broker, mechanism):
    topic = f"req-ok-{uuid.uuid4().hex[:8]}"
    delivered, _ = _produce(broker, topic, _sasl(mechanism))
    assert delivered == [None]
    consumer = Consumer({"bootstrap.servers": f"127.0.0.1:{broker.kafka_port}", "group.id": topic,
                         "auto.offset.reset": "earliest", **_sasl(mechanism)})
    try:
        consumer.subscribe([topic])
        deadline, msg = time.monotonic() + 15, None
        while time.monotonic() < deadline and (msg is None or msg.error() is not None):
            msg = consumer.poll(0.2)
    finally:
        consumer.close()
    assert msg is not None and msg.value() == b"v"


REQUESTS = {versions.METADATA: (1, {"topics": []}), versions.LIST_GROUPS: (1, {}),
            versions.SASL_AUTHENTICATE: (0, {"auth_bytes": b"\0alice\0alice-pw"})}  # before a handshake


@pytest.mark.parametrize("api_key", sorted(REQUESTS))
def test_the_first_request_other_than_apiversions_or_a_handshake_closes_the_connection(broker, api_key):
    raw = Raw(broker.kafka_port)
    try:
        answer: Any = raw.call(versions.API_VERSIONS, 0, {})
        assert answer.error_code == 0
        version, body = REQUESTS[api_key]
        raw.send(api_key, version, body)
        assert raw.closed_by_peer()
    finally:
        raw.close()


def test_a_handshake_then_a_login_is_let_through(broker):
    raw = Raw(broker.kafka_port)
    try:
        handshake: Any = raw.call(versions.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert handshake.error_code == 0
        done: Any = raw.call(versions.SASL_AUTHENTICATE, 0, {"auth_bytes": b"\0alice\0alice-pw"})
        assert done.error_code == 0
        meta: Any = raw.call(versions.METADATA, 1, {"topics": []})
        assert len(meta.brokers) == 1
    finally:
        raw.close()
