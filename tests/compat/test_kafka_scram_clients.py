"""SCRAM-SHA-256/512 and PLAIN from real Kafka clients over SASL_PLAINTEXT and SASL_SSL: librdkafka
(confluent-kafka) and aiokafka produce and consume after logging in; a wrong password is refused."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError as AioKafkaError

from tests.compat.test_tls_clients import _confluent_round_trip
from tests.support.tls import client_context, module_fixtures

pytestmark = pytest.mark.timeout(120)

dev, broker = module_fixtures()
MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@pytest.fixture(scope="module", autouse=True)
def alice(broker):
    broker.call(broker.running.broker.put_user, "alice", "alice-pw")
    broker.call(broker.running.broker.set_permission, "/", "alice",
                {"configure": ".*", "write": ".*", "read": ".*"})


def _topic() -> str:
    return f"scram-{uuid.uuid4().hex[:8]}"


def _librdkafka(broker: Any, dev: Any, protocol: str, mechanism: str) -> dict[str, str]:
    port = broker.kafka_ssl_port if protocol == "SASL_SSL" else broker.kafka_port
    tls = {"ssl.ca.location": str(dev.ca)} if protocol == "SASL_SSL" else {}
    return {"bootstrap.servers": f"localhost:{port}", "security.protocol": protocol,
            "sasl.mechanisms": mechanism, "sasl.username": "alice", "sasl.password": "alice-pw", **tls}


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka_produces_and_consumes_after_a_sasl_login(broker, dev, protocol, mechanism):
    config = _librdkafka(broker, dev, protocol, mechanism)
    assert _confluent_round_trip(config) == [f"v{n}".encode() for n in range(5)]


async def _aiokafka_round_trip(bootstrap: str, topic: str, **auth: Any) -> list[bytes]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **auth)
    try:
        await producer.start()
        await producer.send_and_wait(topic, b"scram")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", **auth)
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=5000)
        return [m.value for msgs in batch.values() for m in msgs]
    finally:
        await consumer.stop()


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_aiokafka_produces_and_consumes_with_scram_over_sasl_ssl(broker, dev, mechanism):
    got = asyncio.run(_aiokafka_round_trip(
        f"localhost:{broker.kafka_ssl_port}", _topic(), ssl_context=client_context(dev.ca),
        security_protocol="SASL_SSL", sasl_mechanism=mechanism, sasl_plain_username="alice",
        sasl_plain_password="alice-pw"))
    assert got == [b"scram"]


def test_aiokafka_scram_with_a_wrong_password_is_refused(broker):
    with pytest.raises(AioKafkaError):
        asyncio.run(_aiokafka_round_trip(
            f"localhost:{broker.kafka_port}", _topic(), security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="alice", sasl_plain_password="wrong"))
