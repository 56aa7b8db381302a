"""aiokafka 0.14 against FerryMQ's Kafka listener over real sockets."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.timeout(60)


def _topic(prefix: str = "a") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _drain(consumer: AIOKafkaConsumer, want: int, timeout_s: float = 15) -> list:
    got: list = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(got) < want and loop.time() < deadline:
        for records in (await consumer.getmany(timeout_ms=200)).values():
            got.extend(records)
    return got


def test_aiokafka_keyed_produce_consume_with_group_commit(ferry):
    async def main() -> None:
        bootstrap = ferry.kafka_bootstrap
        topic, group = _topic(), _topic("g")
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        for n in range(10):
            for k in (b"a", b"b", b"c", b"d"):
                await producer.send(topic, key=k, value=b"%s:%d" % (k, n))
        await producer.flush()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        got = await _drain(consumer, 40)
        await consumer.commit()
        await consumer.stop()
        assert len(got) == 40
        for k in (b"a", b"b", b"c", b"d"):
            assert [int(r.value.split(b":")[1]) for r in got if r.key == k] == list(range(10))
        await producer.send_and_wait(topic, key=b"a", value=b"a:10")
        await producer.stop()
        again = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False)
        await again.start()
        rest = await _drain(again, 1)
        committed = [await again.committed(TopicPartition(topic, p)) for p in range(3)]
        await again.stop()
        assert [r.value for r in rest] == [b"a:10"]
        assert sum(c or 0 for c in committed) == 40

    asyncio.run(main())


def test_aiokafka_acks_zero_and_gzip(ferry):
    async def main() -> None:
        bootstrap = ferry.kafka_bootstrap
        topic = _topic()
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=0, compression_type="gzip")
        await producer.start()
        for i in range(20):
            await producer.send(topic, value=b"v%d" % i)
        await producer.flush()
        await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        got = await _drain(consumer, 20)
        await consumer.stop()
        assert [r.value for r in got] == [b"v%d" % i for i in range(20)]

    asyncio.run(main())
