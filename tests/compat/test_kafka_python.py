"""kafka-python 3.x against FerryMQ's Kafka listener over real sockets (idempotence on by default)."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

pytestmark = pytest.mark.timeout(60)


def _topic(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def bootstrap(ferry) -> str:
    return ferry.kafka_bootstrap


@pytest.fixture
def admin(bootstrap):
    client = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    yield client
    client.close()


def _consume(consumer: KafkaConsumer, want: int, timeout_s: float = 15) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            got.extend(records)
    return got


def test_keyed_records_keep_per_key_order_across_partitions(bootstrap, admin):
    topic = _topic()
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    keys = [f"key-{i}".encode() for i in range(6)]
    for n in range(20):
        for k in keys:
            producer.send(topic, key=k, value=f"{k.decode()}:{n}".encode())
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    got = _consume(consumer, 120)
    consumer.close()
    assert len(got) == 120
    assert len({r.partition for r in got}) > 1
    for k in keys:
        seq = [int(r.value.split(b":")[1]) for r in got if r.key == k]
        assert seq == list(range(20))


def test_group_splits_partitions_and_rebalances_when_one_leaves(bootstrap, admin):
    topic, group = _topic(), _topic("g")
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    a = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      heartbeat_interval_ms=200, session_timeout_ms=6000)
    _consume(a, 1, timeout_s=2)
    b = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      heartbeat_interval_ms=200, session_timeout_ms=6000)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        a.poll(timeout_ms=100)
        b.poll(timeout_ms=100)
        if len(a.assignment()) == 2 and len(b.assignment()) == 2:
            break
    assert len(a.assignment()) == 2 and len(b.assignment()) == 2
    assert not (a.assignment() & b.assignment())
    b.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(a.assignment()) != 4:
        a.poll(timeout_ms=100)
    assert len(a.assignment()) == 4
    a.close()


def test_committed_offsets_resume(bootstrap):
    topic, group = _topic(), _topic("g")
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for i in range(10):
        producer.send(topic, value=b"%d" % i)
    producer.flush()
    c1 = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False)
    first = _consume(c1, 10)
    assert [r.value for r in first][:10] == [b"%d" % i for i in range(10)]
    c1.commit()
    c1.close()
    for i in range(10, 15):
        producer.send(topic, value=b"%d" % i)
    producer.flush()
    producer.close()
    c2 = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                       enable_auto_commit=False)
    rest = _consume(c2, 5)
    assert [r.value for r in rest] == [b"%d" % i for i in range(10, 15)]
    assert c2.committed(TopicPartition(topic, 0)) == 10
    c2.close()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compression_codecs_round_trip(bootstrap, codec):
    topic = _topic(codec)
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type=codec, linger_ms=10)
    values = [(b"x%d" % i) * 50 for i in range(50)]
    for v in values:
        producer.send(topic, value=v)
    producer.flush()
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    got = _consume(consumer, 50)
    consumer.close()
    assert [r.value for r in got] == values


def test_admin_create_describe_grow_delete(admin):
    topic = _topic()
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                                  topic_configs={"retention.ms": "3600000"})])
    assert topic in admin.list_topics()
    desc = admin.describe_topics([topic])[0]
    assert len(desc["partitions"]) == 2
    configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    text = repr(configs)
    assert "retention.ms" in text and "3600000" in text
    admin.create_partitions({topic: NewPartitions(total_count=3)})
    assert len(admin.describe_topics([topic])[0]["partitions"]) == 3
    admin.delete_topics([topic])
    assert topic not in admin.list_topics()
