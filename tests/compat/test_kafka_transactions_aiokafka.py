"""aiokafka's transactional producer and read_committed consumer against FerryMQ, over real sockets:
commits are seen, aborts are not (except by read_uncommitted), offsets commit with the transaction,
and a re-initialised transactional.id fences the producer that held it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata

pytestmark = pytest.mark.timeout(90)

# A consume-transform-produce worker on aiokafka: from the group's committed offset, BATCH records
# per transaction, their offsets sent with it. With stop_after >= 0 it commits that many
# transactions, opens one more, produces into it, says "mid" and waits to be killed.
WORKER = textwrap.dedent("""
    import asyncio, sys
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata
    bootstrap, txn_id, group, src, dst, total, stop_after = sys.argv[1:8]
    total, stop_after, BATCH = int(total), int(stop_after), 4

    async def main():
        tp = TopicPartition(src, 0)
        c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             isolation_level="read_committed")
        await c.start()
        c.assign([tp])
        done = await c.committed(tp) or 0
        c.seek(tp, done)
        p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id)
        await p.start()
        txns = 0
        while done < total:
            msgs = []
            while len(msgs) < min(BATCH, total - done):
                got = await c.getmany(tp, timeout_ms=200, max_records=BATCH - len(msgs))
                msgs += got.get(tp, [])
            await p.begin_transaction()
            for m in msgs:
                await p.send(dst, m.value.upper(), partition=0)
            if txns == stop_after:
                await p.flush()
                print("mid", flush=True)
                await asyncio.sleep(600)
            await p.send_offsets_to_transaction({tp: OffsetAndMetadata(msgs[-1].offset + 1, "")}, group)
            await p.commit_transaction()
            done, txns = msgs[-1].offset + 1, txns + 1
        await p.stop()
        await c.stop()
        print("done", flush=True)

    asyncio.run(main())
""")


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


async def _end_offset(bootstrap: str, topic: str, isolation: str) -> int:
    """What ListOffsets answers for the latest offset of partition 0 at this isolation level."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


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
            assert await _end_offset(bootstrap, topic, "read_committed") == 0  # the last stable offset
            assert await _end_offset(bootstrap, topic, "read_uncommitted") == 1
            await producer.commit_transaction()
            assert await _end_offset(bootstrap, topic, "read_committed") == 2  # past the marker
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


def test_aiokafka_consume_transform_produce_is_exactly_once_under_a_producer_killed_mid_transaction(ferry):
    async def produce_input(topic: str, total: int) -> None:
        p = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await p.start()
        for n in range(total):
            await p.send(topic, b"rec-%02d" % n, partition=0)
        await p.stop()

    bootstrap, src, dst, total = ferry.kafka_bootstrap, _name("src"), _name("dst"), 16
    asyncio.run(produce_input(src, total))
    args = [sys.executable, "-c", WORKER, bootstrap, _name("etl"), _name("etl-g"), src, dst, str(total)]
    zombie = subprocess.Popen([*args, "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert zombie.stdout is not None and zombie.stdout.readline().strip() == "mid"
    finally:
        os.kill(zombie.pid, signal.SIGKILL)
        zombie.wait(10)
    restarted = subprocess.run([*args, "-1"], capture_output=True, text=True, timeout=60)
    assert restarted.stdout.strip() == "done", restarted.stderr
    out = asyncio.run(_values(bootstrap, dst, "read_committed", total))
    assert out == [b"REC-%02d" % n for n in range(total)]
    assert len(asyncio.run(_values(bootstrap, dst, "read_uncommitted", total + 4))) == total + 4


def test_an_amqp_stream_consumer_gets_the_records_of_transactions_and_never_their_markers(ferry):
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    ch = conn.channel()
    queue = _name("s-txn")
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})

    async def produce() -> None:
        producer = await _producer(ferry.kafka_bootstrap, _name("txid"))
        try:
            for value in (b"one", b"two"):
                async with producer.transaction():
                    await producer.send(queue, value, partition=0)
        finally:
            await producer.stop()

    asyncio.run(produce())
    ch.basic_qos(prefetch_count=10)
    got = []
    first = {"x-stream-offset": "first"}
    for method, props, body in ch.consume(queue, arguments=first, inactivity_timeout=1):
        if method is None:
            break
        got.append((body, props.headers["x-stream-offset"]))
        ch.basic_ack(method.delivery_tag)
    conn.close()
    assert got == [(b"one", 0), (b"two", 2)]  # offsets 1 and 3 are the commit markers


def _stream_bodies(ch, queue: str) -> list[bytes]:
    got = []
    first = {"x-stream-offset": "first"}
    for method, _props, body in ch.consume(queue, arguments=first, inactivity_timeout=1):
        if method is None:
            break
        got.append(body)
        ch.basic_ack(method.delivery_tag)
    ch.cancel()
    return got


def test_an_amqp_stream_consumer_reads_committed_only_aborted_records_skipped_open_ones_held(ferry):
    """AMQP stream consumers read as read_committed Kafka consumers do: an aborted transaction's records
    never arrive, and nothing past an open transaction's first record arrives until it commits."""
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=10)
    queue = _name("s-rc")
    ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "stream"})
    ch.basic_publish("", queue, b"plain-1")

    async def begin() -> AIOKafkaProducer:
        producer = await _producer(ferry.kafka_bootstrap, _name("txid"))
        await producer.begin_transaction()
        await producer.send_and_wait(queue, b"aborted", partition=0)
        await producer.abort_transaction()
        await producer.begin_transaction()
        await producer.send_and_wait(queue, b"open-then-committed", partition=0)
        return producer

    loop = asyncio.new_event_loop()
    try:
        producer = loop.run_until_complete(begin())
        ch.basic_publish("", queue, b"plain-2")  # after the open transaction's first record: held
        assert _stream_bodies(ch, queue) == [b"plain-1"]
        loop.run_until_complete(producer.commit_transaction())
        assert _stream_bodies(ch, queue) == [b"plain-1", b"open-then-committed", b"plain-2"]
        loop.run_until_complete(producer.stop())
    finally:
        loop.close()
        conn.close()
