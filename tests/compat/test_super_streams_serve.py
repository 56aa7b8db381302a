"""Super streams across a restart of a real `ferrymq serve` (stopped with SIGTERM, started again on the
same data directory): the super stream of a Kafka topic, one declared over AMQP, their partition
queues, the records with their offsets and a consumer group's committed offsets all come back, and a
CreatePartitions after the restart still grows the super stream. confluent-kafka and pika."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from ferrymq.chaos.broker import free_port
from tests.support.stream_reads import read_stream

STREAM = {"x-queue-type": "stream"}


@contextlib.contextmanager
def serve(data_dir: Path, amqp_port: int, kafka_port: int) -> Iterator[tuple[str, str]]:
    cmd = [sys.executable, "-c", "from ferrymq.cli import main; main()", "serve", "--data-dir",
           str(data_dir), "--amqp-port", str(amqp_port), "--http-port", "0", "--kafka-port", str(kafka_port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in (kafka_port, amqp_port):
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    break
                time.sleep(0.05)
        yield f"amqp://guest:guest@127.0.0.1:{amqp_port}/%2F", f"127.0.0.1:{kafka_port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


def _wait(futures: dict[Any, Any]) -> None:
    for future in futures.values():
        future.result(10)


def _read_partition(ch: Any, queue: str, limit: int) -> list[tuple[bytes, str, int]]:
    return [(r.body, r.routing_key, r.offset) for r in read_stream(ch, queue, limit, quiet_s=2)]


def _commit_two(bootstrap: str) -> int:
    """A group reads two records of events/1 and commits: the offset it committed."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing", "enable.auto.commit": False})
    c.assign([TopicPartition("events", 1, 0)])
    got: list[Any] = []
    while len(got) < 2:
        got += [m for m in c.consume(2 - len(got), timeout=1) if m.error() is None]
    c.commit(offsets=[TopicPartition("events", 1, got[-1].offset() + 1)], asynchronous=False)
    c.close()
    return got[-1].offset() + 1


def _committed(bootstrap: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "billing"})
    [tp] = c.committed([TopicPartition("events", 1)], timeout=10)
    c.close()
    return int(tp.offset)


def _before(amqp: str, kafka: str) -> tuple[dict[int, list[Any]], int]:
    admin = AdminClient({"bootstrap.servers": kafka})
    _wait(admin.create_topics([NewTopic("events", 3)]))
    producer = Producer({"bootstrap.servers": kafka, "partitioner": "murmur2_random"})
    for i in range(30):
        producer.produce("events", key=b"user-%d" % i, value=b"e%d" % i)
    assert producer.flush(10) == 0
    ch = pika.BlockingConnection(pika.URLParameters(amqp)).channel()
    ch.exchange_declare("ledger", "direct", durable=True, arguments={"x-super-stream": True})
    for i in range(2):
        ch.queue_declare(f"ledger-{i}", durable=True, arguments=STREAM)
        ch.queue_bind(f"ledger-{i}", "ledger", str(i), arguments={"x-stream-partition-order": i})
    ch.confirm_delivery()
    ch.basic_publish("ledger", "1", b"entry", pika.BasicProperties(delivery_mode=2))
    seen = {i: _read_partition(ch, f"events-{i}", 30) for i in range(3)}
    return seen, _commit_two(kafka)


def test_super_streams_their_records_and_committed_offsets_survive_a_serve_restart(tmp_path):
    amqp_port, kafka_port = free_port(), free_port()
    with serve(tmp_path, amqp_port, kafka_port) as (amqp, kafka):
        seen, committed = _before(amqp, kafka)
    assert sum(len(v) for v in seen.values()) == 30 and all(seen.values())
    with serve(tmp_path, amqp_port, kafka_port) as (amqp, kafka):
        ch = pika.BlockingConnection(pika.URLParameters(amqp)).channel()
        ch.exchange_declare("events", "direct", passive=True)
        assert {i: _read_partition(ch, f"events-{i}", 30) for i in range(3)} == seen
        assert [b for b, _, _ in _read_partition(ch, "ledger-1", 1)] == [b"entry"]
        assert _committed(kafka) == committed
        admin = AdminClient({"bootstrap.servers": kafka})
        assert len(admin.list_topics(timeout=10).topics["ledger"].partitions) == 2
        _wait(admin.create_partitions([NewPartitions("events", 4)]))
        ch.confirm_delivery()
        ch.basic_publish("events", "3", b"to the new partition", pika.BasicProperties(delivery_mode=2))
        assert _read_partition(ch, "events-3", 1) == [(b"to the new partition", "3", 0)]
