"""Kafka SASL over a real socket, one authentication path with AMQP: PLAIN and SCRAM-SHA-256/512
logins from kafka-python and confluent-kafka (librdkafka), refusals with Kafka's error messages,
and ``guest`` refused from a non-loopback address exactly as over AMQP."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import pika
import pytest
from confluent_kafka import KafkaError, Producer
from kafka import KafkaProducer

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    """Bound on every address, so a client can reach it from this host's non-loopback address."""
    with EmbeddedBroker(host="0.0.0.0", users={"guest": "guest", "bob": "bob-pw"}) as b:
        core = b.running.broker  # type: ignore[union-attr]
        b.call(core.put_user, "alice", "alice-pw")
        b.call(core.set_permission, "/", "alice", {"configure": ".*", "write": ".*", "read": ".*"})
        yield b


def non_loopback_address() -> str:
    """The address this host uses towards the outside (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("198.51.100.1", 9))
        except OSError:
            pytest.skip("no non-loopback IPv4 address on this host")
        address = s.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no non-loopback IPv4 address on this host")
    return str(address)


def _topic() -> str:
    return f"sasl-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(("mechanism", "user", "password"), [
    ("PLAIN", "alice", "alice-pw"), ("SCRAM-SHA-256", "alice", "alice-pw"),
    ("SCRAM-SHA-512", "alice", "alice-pw"), ("SCRAM-SHA-256", "bob", "bob-pw")])
def test_kafka_python_produces_after_a_sasl_login(broker, mechanism, user, password):
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}",
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                             sasl_plain_username=user, sasl_plain_password=password)
    try:
        assert producer.send(_topic(), b"x").get(10).offset == 0
    finally:
        producer.close()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_python_logs_in_with_bare_tokens_after_a_v0_handshake(broker, mechanism):
    """api_version 0.11 makes kafka-python use SaslHandshake v0: the tokens then travel unframed."""
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}", api_version=(0, 11, 0),
                             security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                             sasl_plain_username="alice", sasl_plain_password="alice-pw")
    try:
        assert producer.send(_topic(), b"x").get(10).offset == 0
    finally:
        producer.close()


def librdkafka_login_error(host: str, port: int, mechanism: str, user: str, password: str) -> str:
    """The SASL error librdkafka reports to the application, or '' if the produce was stored."""
    errors: list[KafkaError] = []
    delivered: list[object] = []
    producer = Producer({"bootstrap.servers": f"{host}:{port}", "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password,
                         "error_cb": errors.append, "message.timeout.ms": "10000"})
    producer.produce(_topic(), b"x", on_delivery=lambda err, msg: delivered.append(err))
    deadline = time.monotonic() + 10
    while producer.flush(0.1) and time.monotonic() < deadline:
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return next(e.str() for e in errors if e.code() == KafkaError._AUTHENTICATION)
    assert producer.flush(1) == 0 and delivered == [None], ([e.str() for e in errors], delivered)
    return ""


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_librdkafka_logs_in_with_scram_and_a_wrong_password_gets_kafkas_message(broker, mechanism):
    port = broker.kafka_port
    assert librdkafka_login_error("127.0.0.1", port, mechanism, "alice", "alice-pw") == ""
    error = librdkafka_login_error("127.0.0.1", port, mechanism, "alice", "wrong")
    assert ("Authentication failed during authentication due to invalid credentials with SASL "
            f"mechanism {mechanism}") in error


def test_librdkafka_plain_with_a_wrong_password_gets_kafkas_message(broker):
    error = librdkafka_login_error("127.0.0.1", broker.kafka_port, "PLAIN", "alice", "wrong")
    assert "Authentication failed: Invalid username or password" in error


def test_a_user_imported_with_only_a_rabbitmq_hash_cannot_use_scram_but_can_use_plain(broker):
    import base64
    import hashlib

    salt = b"\x01\x02\x03\x04"
    digest = base64.b64encode(salt + hashlib.sha256(salt + b"carol-pw").digest()).decode()
    broker.call(broker.running.broker.put_user, "carol", None, digest)
    broker.call(broker.running.broker.set_permission, "/", "carol",
                {"configure": ".*", "write": ".*", "read": ".*"})
    port = broker.kafka_port
    assert "Invalid user credentials" in librdkafka_login_error("127.0.0.1", port, "SCRAM-SHA-256",
                                                                 "carol", "carol-pw")
    assert librdkafka_login_error("127.0.0.1", port, "PLAIN", "carol", "carol-pw") == ""


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_guest_from_a_non_loopback_address_is_refused_over_kafka_as_over_amqp(broker, mechanism):
    host = non_loopback_address()
    assert librdkafka_login_error("127.0.0.1", broker.kafka_port, mechanism, "guest", "guest") == ""
    error = librdkafka_login_error(host, broker.kafka_port, mechanism, "guest", "guest")
    assert "Authentication failed" in error
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(pika.ConnectionParameters(host, broker.amqp_port))
    assert librdkafka_login_error(host, broker.kafka_port, mechanism, "alice", "alice-pw") == ""
