"""Transactions across a broker restart (aiokafka over real sockets, one data directory): committed
data stays visible to read_committed, aborted data stays hidden, a transaction left open by the
restart is still not exposed, and its timeout aborts it afterwards, its producer fenced."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)


async def _read(bootstrap: str, topic: str, isolation: str, want: int, timeout_s: float = 5) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                                enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek(tp, 0)
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


async def _before_restart(bootstrap: str, topic: str, txn_id: str) -> None:
    """A committed, an aborted and an open transaction (the producer's connection simply goes)."""
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id, transaction_timeout_ms=3000)
    await p.start()
    async with p.transaction():
        await p.send(topic, b"committed", partition=0)
    await p.begin_transaction()
    await p.send_and_wait(topic, b"aborted", partition=0)
    await p.abort_transaction()
    await p.begin_transaction()
    await p.send_and_wait(topic, b"open", partition=0)
    await p.stop()


async def _after_restart(bootstrap: str, topic: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    committed = await _read(bootstrap, topic, "read_committed", 2, timeout_s=1)
    uncommitted = await _read(bootstrap, topic, "read_uncommitted", 3)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"{topic}-next")
    await p.start()
    async with p.transaction():  # behind the open transaction: visible once the timeout aborts it
        await p.send(topic, b"next", partition=0)
    await p.stop()
    return committed, uncommitted, await _read(bootstrap, topic, "read_committed", 2, timeout_s=15)


def test_a_restart_keeps_aborted_and_open_transactions_hidden_and_times_the_open_one_out(tmp_path):
    topic, txn_id = f"rtx-{uuid.uuid4().hex[:8]}", f"rtxid-{uuid.uuid4().hex[:8]}"
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        asyncio.run(_before_restart(b.kafka_bootstrap, topic, txn_id))
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        committed, uncommitted, later = asyncio.run(_after_restart(b.kafka_bootstrap, topic))
    assert committed == [b"committed"]  # the open transaction holds the stable offset back
    assert uncommitted == [b"committed", b"aborted", b"open"]
    assert later == [b"committed", b"next"]  # timed out and aborted: "open" never shows


def test_a_producer_whose_transaction_timed_out_is_fenced(ferry):
    async def main() -> None:
        topic = f"ttx-{uuid.uuid4().hex[:8]}"
        p = AIOKafkaProducer(bootstrap_servers=ferry.kafka_bootstrap, transactional_id=topic,
                             transaction_timeout_ms=500)
        await p.start()
        try:
            await p.begin_transaction()
            await p.send_and_wait(topic, b"slow", partition=0)
            await asyncio.sleep(1.5)
            with pytest.raises(ProducerFenced):
                await p.commit_transaction()
        finally:
            await p.stop()
        assert await _read(ferry.kafka_bootstrap, topic, "read_uncommitted", 1) == [b"slow"]
        assert await _read(ferry.kafka_bootstrap, topic, "read_committed", 1, timeout_s=1.5) == []

    asyncio.run(main())
