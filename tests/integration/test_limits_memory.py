"""The memory alarm by the process's RSS (RabbitMQ's vm_memory_high_watermark): a real load passes the
watermark, publishers get connection.blocked, raising the watermark live clears it (connection.unblocked);
/api/nodes and /metrics show it under RabbitMQ's names. A connection that publishes and consumes keeps
getting deliveries while blocked, and settles them once unblocked (no deadlock)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator

import aio_pika
import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(vm_memory_high_watermark="64GiB") as b:
        yield b


def _node(broker: EmbeddedBroker) -> dict:
    nodes = requests.get(f"{broker.http_url}/api/nodes", auth=AUTH, timeout=5).json()
    assert len(nodes) == 1
    return nodes[0]


def _set_watermark(broker: EmbeddedBroker, **form: object) -> None:
    r = requests.put(f"{broker.http_url}/api/ferrymq/vm-memory-high-watermark", json=form, auth=AUTH,
                     timeout=5)
    assert r.status_code == 204, r.text


def _metric(broker: EmbeddedBroker, name: str) -> float:
    text = requests.get(f"{broker.http_url}/metrics", timeout=5).text
    line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
    return float(line.split()[1])


def _pump(conn: pika.BlockingConnection, until: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert until(), "condition not reached in time"


def test_rss_above_the_watermark_blocks_publishers_and_raising_it_live_unblocks(broker) -> None:
    base = _node(broker)
    assert base["mem_alarm"] is False and base["mem_used"] > 0
    _set_watermark(broker, absolute=base["mem_used"] + 24 * MiB)  # 24 MiB above today's RSS
    pub = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    events: list[str] = []
    pub.add_on_connection_blocked_callback(lambda *_: events.append("blocked"))
    pub.add_on_connection_unblocked_callback(lambda *_: events.append("unblocked"))
    ch = pub.channel()
    q = f"mem-{uuid.uuid4().hex[:8]}"
    ch.queue_declare(q)
    body = b"m" * MiB
    for _ in range(48):  # 48 MiB of unconsumed bodies: RSS passes the mark (queued bodies stay < 1 GiB)
        ch.basic_publish("", q, body)
    _pump(pub, lambda: "blocked" in events)
    node = _node(broker)
    assert node["mem_alarm"] is True and node["mem_used"] > node["mem_limit"]
    assert _metric(broker, "rabbitmq_alarms_memory_used_watermark") == 1.0
    assert _metric(broker, "rabbitmq_process_resident_memory_bytes") > node["mem_limit"]
    health = requests.get(f"{broker.http_url}/api/health/checks/alarms", auth=AUTH, timeout=5)
    assert health.status_code == 503
    _set_watermark(broker, absolute="64GiB")  # rabbitmqctl set_vm_memory_high_watermark absolute 64GiB
    _pump(pub, lambda: "unblocked" in events)
    assert _node(broker)["mem_alarm"] is False
    assert _metric(broker, "rabbitmq_alarms_memory_used_watermark") == 0.0
    ch.basic_publish("", q, b"after")  # reading resumed: the publish arrives
    assert ch.queue_purge(q).method.message_count == 49
    pub.close()


def test_a_connection_that_publishes_and_consumes_gets_deliveries_while_blocked(broker) -> None:
    asyncio.run(_publish_and_consume(broker))


def _http_publish(broker: EmbeddedBroker, queue: str, body: str) -> None:
    r = requests.post(f"{broker.http_url}/api/exchanges/%2F/amq.default/publish", auth=AUTH, timeout=5,
                      json={"routing_key": queue, "payload": body, "payload_encoding": "string",
                            "properties": {}})
    assert r.json()["routed"] is True


def _unacked(broker: EmbeddedBroker, queue: str) -> int:
    info = requests.get(f"{broker.http_url}/api/queues/%2F/{queue}", auth=AUTH, timeout=5).json()
    return int(info["messages_unacknowledged"]) + int(info["messages_ready"])


async def _wait(until: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert until(), "condition not reached in time"


async def _publish_and_consume(broker: EmbeddedBroker) -> None:
    """RabbitMQ blocks the whole connection that publishes (it stops reading it), but keeps delivering
    to it: its consumers get what arrives meanwhile, and their acks are read once it is unblocked."""
    conn = await aio_pika.connect(broker.amqp_url)
    ch = await conn.channel()
    await ch.set_qos(prefetch_count=100)
    inbox = await ch.declare_queue(f"in-{uuid.uuid4().hex[:8]}", auto_delete=True)
    outbox = await ch.declare_queue(f"out-{uuid.uuid4().hex[:8]}", auto_delete=True)
    got: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def take(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        got.append(message)

    await inbox.consume(take)
    await ch.default_exchange.publish(aio_pika.Message(b"out"), outbox.name)  # it publishes too
    await outbox.declare()  # a round trip: the publish is in before the alarm
    _set_watermark(broker, absolute=1)  # any RSS is above it: the alarm goes off
    await _wait(lambda: _node(broker)["mem_alarm"])
    for i in range(10):  # delivered to the blocked connection meanwhile
        _http_publish(broker, inbox.name, str(i))
    await _wait(lambda: len(got) == 10)
    for m in got:
        await m.ack()  # written by the client; the broker reads them once the connection is unblocked
    assert _unacked(broker, inbox.name) == 10
    _set_watermark(broker, absolute="64GiB")
    await asyncio.to_thread(_wait_sync, lambda: _unacked(broker, inbox.name) == 0)
    assert sorted(m.body for m in got) == [str(i).encode() for i in range(10)]
    await conn.close()


def _wait_sync(until: Callable[[], bool], timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert until(), "condition not reached in time"


def test_kafka_produce_during_the_alarm_is_stored_and_throttled_as_kafka_quotas_do(broker) -> None:
    """Kafka has no memory alarm: the records are stored (they go to segment files, not memory) and the
    answer carries throttle_time_ms, which the client honours before its next request."""
    from kafka import KafkaConsumer, KafkaProducer

    topic = f"alarm-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=f"127.0.0.1:{broker.kafka_port}", linger_ms=0)
    producer.send(topic, b"before").get(timeout=10)
    def throttled() -> float:  # kafka-python records each response's throttle_time_ms
        return max(group.get("throttle-time-max", 0) or 0 for group in producer.metrics().values())

    assert throttled() == 0
    _set_watermark(broker, absolute=1)
    try:
        assert _node(broker)["mem_alarm"] is True
        producer.send(topic, b"during").get(timeout=10)
        assert throttled() == 1000
    finally:
        _set_watermark(broker, absolute="64GiB")
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=f"127.0.0.1:{broker.kafka_port}",
                             auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    assert [next(consumer).value, next(consumer).value] == [b"before", b"during"]
    consumer.close()
