"""Real clients over FerryMQ's TLS listeners, verification on, CA from `ferrymq certs`: kombu over
AMQPS; aiokafka and confluent-kafka with security protocols SSL and SASL_SSL; boto3's SQS over HTTPS."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from botocore.config import Config
from confluent_kafka import Consumer, KafkaError, Producer
from kombu import Connection, Queue

from ferrymq.testing import EmbeddedBroker
from tests.support.tls import DevCerts, client_context, module_fixtures

pytestmark = pytest.mark.timeout(90)

dev, broker = module_fixtures()


def _topic() -> str:
    return f"tls-{uuid.uuid4().hex[:8]}"


# --- AMQPS -------------------------------------------------------------------------------------


def test_kombu_publishes_and_consumes_over_amqps(broker, dev):
    ssl_opts = {"ca_certs": str(dev.ca), "cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"}
    with Connection(f"amqp://guest:guest@localhost:{broker.amqps_port}//", ssl=ssl_opts) as conn:
        queue = Queue("kombu-tls", routing_key="kombu-tls")
        with conn.Producer() as producer:
            producer.publish({"n": 1}, routing_key="kombu-tls", declare=[queue], serializer="json")
        with conn.SimpleQueue(queue) as simple:
            message = simple.get(timeout=10)
            message.ack()
        assert conn.transport.client.connection.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert message.payload == {"n": 1}


# --- Kafka SSL and SASL_SSL ---------------------------------------------------------------------


async def _aiokafka_round_trip(port: int, ctx: ssl.SSLContext, topic: str, **auth: str) -> list[bytes]:
    bootstrap = f"localhost:{port}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, ssl_context=ctx, **auth)
    try:
        await producer.start()
        for n in range(5):
            await producer.send_and_wait(topic, f"v{n}".encode())
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, ssl_context=ctx,
                                auto_offset_reset="earliest", **auth)
    await consumer.start()
    try:
        got = []
        while len(got) < 5:
            batch = await consumer.getmany(timeout_ms=1000)
            got += [m.value for msgs in batch.values() for m in msgs]
        return got
    finally:
        await consumer.stop()


def test_aiokafka_produces_and_consumes_with_security_protocol_ssl(broker, dev):
    got = asyncio.run(_aiokafka_round_trip(broker.kafka_ssl_port, client_context(dev.ca), _topic(),
                                           security_protocol="SSL"))
    assert got == [f"v{n}".encode() for n in range(5)]


def test_aiokafka_produces_and_consumes_with_sasl_ssl(broker, dev):
    got = asyncio.run(_aiokafka_round_trip(
        broker.kafka_ssl_port, client_context(dev.ca), _topic(), security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN", sasl_plain_username="guest", sasl_plain_password="guest"))
    assert got == [f"v{n}".encode() for n in range(5)]


def test_aiokafka_sasl_ssl_with_a_wrong_password_is_refused(broker, dev):
    from aiokafka.errors import KafkaError as AioKafkaError

    with pytest.raises(AioKafkaError):
        asyncio.run(_aiokafka_round_trip(
            broker.kafka_ssl_port, client_context(dev.ca), _topic(), security_protocol="SASL_SSL",
            sasl_mechanism="PLAIN", sasl_plain_username="guest", sasl_plain_password="wrong"))


def _librdkafka(broker: EmbeddedBroker, dev: DevCerts, protocol: str, **extra: str) -> dict[str, str]:
    return {"bootstrap.servers": f"localhost:{broker.kafka_ssl_port}", "security.protocol": protocol,
            "ssl.ca.location": str(dev.ca), **extra}


def _confluent_round_trip(config: dict[str, str]) -> list[bytes]:
    topic = _topic()
    producer = Producer(config)
    for n in range(5):
        producer.produce(topic, f"v{n}".encode())
    assert producer.flush(20) == 0
    consumer = Consumer({**config, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < 5 and time.monotonic() < deadline:
        for m in consumer.consume(num_messages=10, timeout=0.5):
            if m.error() is None:
                got.append(m.value())
    consumer.close()
    return got


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_confluent_kafka_produces_and_consumes_over_tls(broker, dev, protocol):
    sasl = {"sasl.mechanisms": "PLAIN", "sasl.username": "guest", "sasl.password": "guest"}
    config = _librdkafka(broker, dev, protocol, **(sasl if protocol == "SASL_SSL" else {}))
    assert _confluent_round_trip(config) == [f"v{n}".encode() for n in range(5)]


def test_confluent_kafka_trusting_another_ca_reports_a_certificate_verification_failure(broker, dev):
    errors: list[KafkaError] = []
    config = _librdkafka(broker, dev, "SSL", **{"ssl.ca.location": str(dev.other_ca)})
    producer = Producer({**config, "error_cb": errors.append, "message.timeout.ms": "3000"})
    producer.produce("never", b"x")
    producer.flush(5)
    assert any("certificate verify failed" in e.str() for e in errors), [e.str() for e in errors]


# --- SQS over HTTPS ---------------------------------------------------------------------------


def _sqs(broker: EmbeddedBroker, ca: Path) -> Any:
    return boto3.client("sqs", endpoint_url=f"https://127.0.0.1:{broker.https_port}", verify=str(ca),
                        region_name="us-east-1", aws_access_key_id="ferry",
                        aws_secret_access_key="ferry-secret", config=Config(retries={"max_attempts": 1}))


def test_boto3_sqs_over_https_with_verification_on(broker, dev):
    sqs = _sqs(broker, dev.ca)
    url = sqs.create_queue(QueueName="tls-sqs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="over tls")
    got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert [m["Body"] for m in got] == ["over tls"]


def test_boto3_trusting_another_ca_fails_with_an_ssl_error(broker, dev):
    from botocore.exceptions import SSLError

    sqs = _sqs(broker, dev.other_ca)
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        sqs.list_queues()
