"""confluent-kafka (librdkafka) against FerryMQ's Kafka listener over real sockets."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

pytestmark = pytest.mark.timeout(60)


def _topic(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _consume(c: Consumer, want: int, timeout_s: float = 20) -> list:
    got: list = []
    deadline = time.monotonic() + timeout_s
    while len(got) < want and time.monotonic() < deadline:
        for m in c.consume(num_messages=100, timeout=0.2):
            if m.error() is None:
                got.append(m)
    return got


def _admin(ferry) -> AdminClient:
    return AdminClient({"bootstrap.servers": ferry.kafka_bootstrap})


def _create(ferry, topic: str, partitions: int, **configs: str) -> None:
    admin = _admin(ferry)  # kept alive until the futures resolve: a collected client cancels them
    for fut in admin.create_topics([NewTopic(topic, partitions, 1, config=configs)]).values():
        fut.result(10)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_librdkafka_idempotent_produce_and_group_consume(ferry, codec):
    topic, group = _topic(codec), _topic("g")
    _create(ferry, topic, 4)
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "enable.idempotence": True,
                  "compression.codec": codec, "linger.ms": 5})
    for n in range(25):
        for k in ("k1", "k2", "k3", "k4", "k5"):
            p.produce(topic, key=k, value=f"{k}:{n}")
    assert p.flush(15) == 0
    c = Consumer({"bootstrap.servers": ferry.kafka_bootstrap, "group.id": group,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = _consume(c, 125)
    c.commit(asynchronous=False)
    committed = c.committed([TopicPartition(topic, i) for i in range(4)], timeout=10)
    c.close()
    assert len(got) == 125
    for k in (b"k1", b"k2", b"k3", b"k4", b"k5"):
        assert [int(m.value().split(b":")[1]) for m in got if m.key() == k] == list(range(25))
    assert sum(tp.offset for tp in committed if tp.offset >= 0) == 125


def test_librdkafka_admin_describe_and_delete(ferry):
    topic = _topic()
    _create(ferry, topic, 2, **{"retention.ms": "60000"})
    admin = _admin(ferry)
    md = admin.list_topics(timeout=10)
    assert len(md.topics[topic].partitions) == 2
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    configs = admin.describe_configs([res])[res].result(10)
    assert configs["retention.ms"].value == "60000"
    assert configs["cleanup.policy"].value == "delete"
    for fut in admin.delete_topics([topic]).values():
        fut.result(10)
    assert topic not in admin.list_topics(timeout=10).topics
