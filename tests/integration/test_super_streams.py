"""Multi-partition Kafka topics as RabbitMQ super streams over AMQP, both ways: a topic with N
partitions is an exchange S (x-super-stream) with partition stream queues S-0 .. S-(N-1); a super stream
declared over AMQP is one Kafka topic of N partitions. Real clients: pika, confluent-kafka, the HTTP API."""

from __future__ import annotations

import tempfile
from typing import Any

import pika
import pika.exceptions
import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from kafka.partitioner.default import murmur2

from ferrymq.testing import EmbeddedBroker
from tests.support.stream_reads import read_stream as _consume

STREAM = {"x-queue-type": "stream"}
PERSISTENT = pika.BasicProperties(delivery_mode=2)


@pytest.fixture(scope="module")
def broker():
    with tempfile.TemporaryDirectory() as data, EmbeddedBroker(data_dir=data) as b:
        yield b


def _channel(broker: EmbeddedBroker) -> Any:
    return pika.BlockingConnection(pika.URLParameters(broker.amqp_url)).channel()


def _admin(broker: EmbeddedBroker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.kafka_bootstrap})


def _wait(futures: dict[Any, Any]) -> None:
    for future in futures.values():
        future.result(10)


def _create_topic(broker: EmbeddedBroker, name: str, partitions: int) -> None:
    admin = _admin(broker)  # held while its futures run: a collected client cancels them
    _wait(admin.create_topics([NewTopic(name, partitions)]))


def _grow(broker: EmbeddedBroker, name: str, partitions: int) -> None:
    admin = _admin(broker)
    _wait(admin.create_partitions([NewPartitions(name, partitions)]))


def _produce(broker: EmbeddedBroker, topic: str, records: list[dict[str, Any]], **conf: Any) -> None:
    producer = Producer({"bootstrap.servers": broker.kafka_bootstrap, **conf})
    for record in records:
        producer.produce(topic, **record)
    assert producer.flush(10) == 0


def _kafka_read(broker: EmbeddedBroker, topic: str, partition: int, count: int) -> list[Any]:
    consumer = Consumer({"bootstrap.servers": broker.kafka_bootstrap, "group.id": f"g-{topic}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    got: list[Any] = []
    for _ in range(50):
        got += [m for m in consumer.consume(count - len(got), timeout=0.2) if m.error() is None]
        if len(got) >= count:
            break
    consumer.close()
    return got


def _high_watermark(broker: EmbeddedBroker, topic: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": broker.kafka_bootstrap, "group.id": "watermarks"})
    _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
    consumer.close()
    return int(high)


def _declare_super_stream(ch: Any, name: str, partitions: int) -> None:
    """As RabbitMQ's docs declare one over AMQP 0-9-1: exchange, then each stream and its binding."""
    ch.exchange_declare(name, "direct", durable=True, arguments={"x-super-stream": True})
    for i in range(partitions):
        ch.queue_declare(f"{name}-{i}", durable=True, arguments=STREAM)
        ch.queue_bind(f"{name}-{i}", name, str(i), arguments={"x-stream-partition-order": i})


def test_a_kafka_topic_of_three_partitions_is_a_super_stream_whose_partition_queue_reads_its_partition(
        broker):
    _create_topic(broker, "orders", 3)
    _produce(broker, "orders", [{"value": b"p%d-%d" % (p, i), "key": b"k%d" % i, "partition": p,
                                 "headers": [("tenant", b"t%d" % p)]} for i in range(3) for p in range(3)])
    ch = _channel(broker)
    ch.exchange_declare("orders", "direct", passive=True)
    assert [ch.queue_declare(f"orders-{i}", passive=True).method.message_count for i in range(3)] == [3, 3, 3]
    got = _consume(ch, "orders-1", limit=4)  # one more than partition 1 holds: none may come
    assert [(b, k, o) for b, k, o, _ in got] == [(b"p1-0", "k0", 0), (b"p1-1", "k1", 1), (b"p1-2", "k2", 2)]
    assert {h["tenant"] for _, _, _, h in got} == {"t1"}  # UTF-8 header values read as text


def test_a_publish_to_the_super_stream_exchange_with_key_2_is_read_by_kafka_from_partition_2(broker):
    _create_topic(broker, "payments", 3)
    ch = _channel(broker)
    ch.confirm_delivery()
    ch.basic_publish("payments", "2", b"to partition 2", pika.BasicProperties(
        delivery_mode=2, message_id="m-2", headers={"tenant": "acme"}))
    records = _kafka_read(broker, "payments", 2, 1)
    assert [(r.partition(), r.offset(), r.key(), r.value()) for r in records] == [
        (2, 0, b"2", b"to partition 2")]
    assert dict(records[0].headers())["tenant"] == b"acme"
    assert [_high_watermark(broker, "payments", p) for p in range(3)] == [0, 0, 1]


def test_a_super_stream_declared_over_amqp_is_one_kafka_topic_partitioned_by_murmur2(broker):
    ch = _channel(broker)
    _declare_super_stream(ch, "invoices", 3)
    topics = _admin(broker).list_topics(timeout=10).topics
    assert len(topics["invoices"].partitions) == 3
    assert not {"invoices-0", "invoices-1", "invoices-2"} & set(topics)
    keys = [b"customer-%d" % i for i in range(30)]
    _produce(broker, "invoices", [{"key": k, "value": b"v-" + k} for k in keys], partitioner="murmur2_random")
    for i in range(3):
        expected = [k for k in keys if (murmur2(k) & 0x7FFFFFFF) % 3 == i]
        got = _consume(ch, f"invoices-{i}", limit=len(expected))
        assert [k.encode() for _, k, _, _ in got] == expected
        assert ch.queue_declare(f"invoices-{i}", passive=True).method.message_count == len(expected)
        assert [b for b, _, _, _ in got] == [b"v-" + k for k in expected]


def test_create_partitions_adds_partition_queues_and_their_bindings(broker):
    _create_topic(broker, "grow", 2)
    _grow(broker, "grow", 4)
    ch = _channel(broker)
    for i in range(4):
        ch.queue_declare(f"grow-{i}", passive=True)
    ch.confirm_delivery()
    ch.basic_publish("grow", "3", b"new partition", PERSISTENT)
    assert [r.value() for r in _kafka_read(broker, "grow", 3, 1)] == [b"new partition"]


def test_a_one_partition_topic_grown_to_two_becomes_a_super_stream(broker):
    _create_topic(broker, "single", 1)
    ch = _channel(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.exchange_declare("single", "direct", passive=True)
    _grow(broker, "single", 2)
    ch = _channel(broker)
    ch.exchange_declare("single", "direct", passive=True)
    assert [ch.queue_declare(f"single-{i}", passive=True).method.message_count for i in (0, 1)] == [0, 0]


def test_the_management_api_lists_the_super_stream_as_rabbitmq_does(broker):
    _create_topic(broker, "listed", 2)
    auth = ("guest", "guest")
    api = f"{broker.http_url}/api"
    exchange = requests.get(f"{api}/exchanges/%2F/listed", auth=auth, timeout=5).json()
    assert (exchange["type"], exchange["durable"], exchange["arguments"]) == (
        "direct", True, {"x-super-stream": True})
    queue = requests.get(f"{api}/queues/%2F/listed-1", auth=auth, timeout=5).json()
    assert (queue["type"], queue["durable"], queue["arguments"]) == ("stream", True, STREAM)
    bindings = requests.get(f"{api}/exchanges/%2F/listed/bindings/source", auth=auth, timeout=5).json()
    assert sorted((b["destination"], b["routing_key"], b["arguments"]) for b in bindings) == [
        ("listed-0", "0", {"x-stream-partition-order": 0}),
        ("listed-1", "1", {"x-stream-partition-order": 1})]


def test_a_rabbitmq_definitions_file_with_a_super_stream_imports_as_one_kafka_topic(broker):
    definitions = {
        "exchanges": [{"name": "imported", "vhost": "/", "type": "direct", "durable": True,
                       "auto_delete": False, "internal": False, "arguments": {"x-super-stream": True}}],
        "queues": [{"name": f"imported-{i}", "vhost": "/", "durable": True, "auto_delete": False,
                    "arguments": STREAM} for i in range(3)],
        "bindings": [{"source": "imported", "vhost": "/", "destination": f"imported-{i}",
                      "destination_type": "queue", "routing_key": str(i),
                      "arguments": {"x-stream-partition-order": i}} for i in range(3)],
    }
    answer = requests.post(f"{broker.http_url}/api/definitions", json=definitions, auth=("guest", "guest"),
                           timeout=10)
    assert answer.status_code in (200, 201, 204), answer.text
    topics = _admin(broker).list_topics(timeout=10).topics
    assert len(topics["imported"].partitions) == 3 and "imported-0" not in topics


def test_deleting_the_kafka_topic_deletes_its_super_stream_and_cancels_its_consumers(broker):
    _create_topic(broker, "doomed", 2)
    consumer = _channel(broker)
    consumer.basic_qos(prefetch_count=10)
    cancelled: list[Any] = []
    consumer.add_on_cancel_callback(cancelled.append)
    consumer.basic_consume("doomed-0", lambda *a: None)
    admin = _admin(broker)
    _wait(admin.delete_topics(["doomed"]))
    for _ in range(50):
        if cancelled:
            break
        consumer.connection.process_data_events(0.05)
    assert len(cancelled) == 1
    ch = _channel(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.queue_declare("doomed-0", passive=True)
    ch = _channel(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.exchange_declare("doomed", "direct", passive=True)


def test_deleting_the_exchange_and_then_its_partition_queues_deletes_the_topic(broker):
    ch = _channel(broker)
    _declare_super_stream(ch, "cleanup", 2)
    ch.exchange_delete("cleanup")
    assert "cleanup" in _admin(broker).list_topics(timeout=10).topics  # queues still read it
    ch.queue_declare("cleanup-1", passive=True)
    ch.queue_delete("cleanup-0")
    ch.queue_delete("cleanup-1")
    assert "cleanup" not in _admin(broker).list_topics(timeout=10).topics


def test_deleting_the_exchange_leaves_a_stream_queue_of_the_topics_name_its_topic(broker):
    ch = _channel(broker)
    ch.queue_declare("solo", durable=True, arguments=STREAM)
    ch.exchange_declare("solo", "direct", durable=True, arguments={"x-super-stream": True})
    ch.queue_declare("solo-1", durable=True, arguments=STREAM)
    assert len(_admin(broker).list_topics(timeout=10).topics["solo"].partitions) == 2
    ch.queue_delete("solo-1")
    ch.exchange_delete("solo")
    assert "solo" in _admin(broker).list_topics(timeout=10).topics
    ch.queue_delete("solo")
    assert "solo" not in _admin(broker).list_topics(timeout=10).topics


def test_a_queue_argument_x_stream_partition_order_names_the_partition_of_a_named_queue(broker):
    ch = _channel(broker)
    ch.exchange_declare("regions", "direct", durable=True, arguments={"x-super-stream": True})
    for i, region in enumerate(("amer", "emea")):
        order = {"x-stream-partition-order": i}
        ch.queue_declare(f"regions-{region}", durable=True, arguments={**STREAM, **order})
        ch.queue_bind(f"regions-{region}", "regions", region, arguments=order)
    ch.confirm_delivery()
    ch.basic_publish("regions", "emea", b"to emea", PERSISTENT)
    assert [r.value() for r in _kafka_read(broker, "regions", 1, 1)] == [b"to emea"]
    assert not {"regions-amer", "regions-emea"} & set(_admin(broker).list_topics(timeout=10).topics)


def test_a_stream_queue_declared_before_its_super_stream_stays_a_topic_of_its_own(broker):
    ch = _channel(broker)
    ch.queue_declare("early-0", durable=True, arguments=STREAM)
    ch.exchange_declare("early", "direct", durable=True, arguments={"x-super-stream": True})
    ch.queue_declare("early-0", durable=True, arguments=STREAM)
    topics = _admin(broker).list_topics(timeout=10).topics
    assert "early-0" in topics and "early" not in topics


def test_single_partition_topics_keep_no_super_stream(broker):
    _create_topic(broker, "plain", 1)
    ch = _channel(broker)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        ch.exchange_declare("plain", "direct", passive=True)


def test_a_super_stream_its_partitions_and_their_records_survive_a_restart():
    with tempfile.TemporaryDirectory() as data:
        with EmbeddedBroker(data_dir=data) as b:
            _create_topic(b, "kept", 2)
            _produce(b, "kept", [{"value": b"r%d" % i, "partition": 1} for i in range(3)])
            ch = _channel(b)
            _declare_super_stream(ch, "declared", 2)
            _declare_super_stream(ch, "orphan", 2)
            ch.confirm_delivery()
            ch.basic_publish("declared", "1", b"amqp", PERSISTENT)
            ch.basic_publish("orphan", "1", b"kept by its queue", PERSISTENT)
            ch.exchange_delete("orphan")  # its partition queues still read the topic
        with EmbeddedBroker(data_dir=data) as b:
            ch = _channel(b)
            assert [(body, o) for body, _, o, _ in _consume(ch, "kept-1", limit=3)] == [
                (b"r0", 0), (b"r1", 1), (b"r2", 2)]
            assert [body for body, _, _, _ in _consume(ch, "declared-1", limit=1)] == [b"amqp"]
            ch.basic_publish("kept", "0", b"after restart", PERSISTENT)
            assert [r.value() for r in _kafka_read(b, "kept", 0, 1)] == [b"after restart"]
            topics = _admin(b).list_topics(timeout=10).topics
            assert [len(topics[t].partitions) for t in ("declared", "orphan")] == [2, 2]
            assert not {"declared-1", "orphan-1"} & set(topics)
            assert [body for body, _, _, _ in _consume(ch, "orphan-1", limit=1)] == [b"kept by its queue"]
