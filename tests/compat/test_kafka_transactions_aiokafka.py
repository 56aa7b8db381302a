"""aiokafka's transactional producer and read_committed consumer against FerryMQ, over real sockets:
commits are seen, aborts are not (except by read_uncommitted), offsets commit with the transaction,
and a re-initialised transactional.id fences the producer that held it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.timeout(90)


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _values(bootstrap: str, topic: str, isolation: str, want: int, timeout_s: float = 6) -> list[bytes]:
    """Everything a fresh consumer reads from the start of ``topic`` (stops at ``want`` or the timeout)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                isolation_level=isolation, enable_auto_commit=False)
    await consumer.start()
    got: list[bytes] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    try:
        while len(got) < want and loop.time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return got


async def _producer(bootstrap: str, txn_id: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
    await producer.start()
    return producer


def test_committed_records_are_read_and_aborted_ones_only_by_read_uncommitted(ferry):
    async def main() -> None:
        topic, bootstrap = _name("tx"), ferry.kafka_bootstrap
        producer = await _producer(bootstrap, _name("txid"))
        try:
            async with producer.transaction():
                for n in range(3):
                    await producer.send(topic, b"commit-%d" % n, partition=0)
            await producer.begin_transaction()
            for n in range(2):
                await producer.send(topic, b"abort-%d" % n, partition=0)
            await producer.flush()
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(topic, b"after", partition=0)
        finally:
            await producer.stop()
        committed = await _values(bootstrap, topic, "read_committed", 4)
        uncommitted = await _values(bootstrap, topic, "read_uncommitted", 6)
        assert committed == [b"commit-0", b"commit-1", b"commit-2", b"after"]
        assert uncommitted == [b"commit-0", b"commit-1", b"commit-2", b"abort-0", b"abort-1", b"after"]

    asyncio.run(main())


def test_read_committed_stops_at_an_open_transaction_until_it_commits(ferry):
    async def main() -> None:
        topic, bootstrap = _name("tx"), ferry.kafka_bootstrap
        producer = await _producer(bootstrap, _name("txid"))
        try:
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"pending", partition=0)
            assert await _values(bootstrap, topic, "read_committed", 1, timeout_s=2) == []
            assert await _values(bootstrap, topic, "read_uncommitted", 1) == [b"pending"]
            await producer.commit_transaction()
        finally:
            await producer.stop()
        assert await _values(bootstrap, topic, "read_committed", 1) == [b"pending"]

    asyncio.run(main())


def test_offsets_sent_to_a_transaction_are_committed_only_with_it(ferry):
    async def main() -> None:
        topic, group, bootstrap = _name("tx"), _name("g"), ferry.kafka_bootstrap
        tp = TopicPartition(topic, 0)
        producer = await _producer(bootstrap, _name("txid"))
        watcher = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        await watcher.start()
        try:
            await producer.begin_transaction()
            await producer.send_and_wait(topic, b"x", partition=0)
            await producer.send_offsets_to_transaction({tp: OffsetAndMetadata(7, "")}, group)
            assert await watcher.committed(tp) is None
            await producer.abort_transaction()
            assert await watcher.committed(tp) is None
            async with producer.transaction():
                await producer.send_offsets_to_transaction({tp: OffsetAndMetadata(9, "")}, group)
            assert await watcher.committed(tp) == 9
        finally:
            await watcher.stop()
            await producer.stop()

    asyncio.run(main())


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(ferry):
    async def main() -> None:
        topic, txn_id, bootstrap = _name("tx"), _name("txid"), ferry.kafka_bootstrap
        old = await _producer(bootstrap, txn_id)
        new = None
        try:
            await old.begin_transaction()
            await old.send_and_wait(topic, b"zombie", partition=0)
            new = await _producer(bootstrap, txn_id)  # aborts the old epoch's open transaction
            with pytest.raises(ProducerFenced):
                await old.send_and_wait(topic, b"zombie-2", partition=0)
                await old.commit_transaction()
            async with new.transaction():
                await new.send(topic, b"fresh", partition=0)
        finally:
            await old.stop()
            if new is not None:
                await new.stop()
        assert await _values(bootstrap, topic, "read_committed", 1) == [b"fresh"]

    asyncio.run(main())
