"""The lab's disk-full fault on a real tmpfs, and what a real ``ferrymq serve`` on it does when the
disk fills: no publisher confirm for a message it could not store, the process stays up, and once
the space is back everything confirmed is there (also after a restart)."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.lab.disk import Disk, DiskError
from ferrymq.testing import EmbeddedBroker

needs_mount = pytest.mark.skipif(not Disk.available(), reason="cannot mount a tmpfs here (needs root)")
QUEUE = "lab-disk"
BIG = b"F" * 65536  # more than the page left at a segment's tail: storing it needs new space


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    d = Disk.mount(tmp_path / "disk", size_mib=64)
    try:
        yield d
    finally:
        d.unmount()


@pytest.fixture
def broker(disk: Disk, tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker whose data directory is the tmpfs (its log goes elsewhere: it must not fill too)."""
    b = BrokerProcess(disk.path, free_port(), kafka_port=free_port(), http_port=free_port(),
                      log_path=tmp_path / "broker.log")
    b.start()
    try:
        yield b
    finally:
        b.stop()
        b.kill9()


def connect(b: BrokerProcess, blocked_timeout: float | None = None) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", b.port, blocked_connection_timeout=blocked_timeout, connection_attempts=1))


def publish_confirmed(ch: pika.adapters.blocking_connection.BlockingChannel, body: bytes) -> None:
    ch.basic_publish("", QUEUE, body, pika.BasicProperties(delivery_mode=2), mandatory=True)


def confirming_channel(b: BrokerProcess) -> pika.adapters.blocking_connection.BlockingChannel:
    ch = connect(b).channel()
    ch.confirm_delivery()
    ch.queue_declare(QUEUE, durable=True)
    return ch


def drain(b: BrokerProcess) -> list[bytes]:
    conn = connect(b)
    ch = conn.channel()
    got = []
    while (msg := ch.basic_get(QUEUE, auto_ack=True))[0] is not None:
        got.append(msg[2])
    conn.close()
    return got


@needs_mount
def test_fill_takes_every_byte_and_free_gives_them_back(disk: Disk) -> None:
    assert disk.fill() > 60 << 20
    assert disk.free_bytes() == 0
    with pytest.raises(OSError) as full, open(disk.path / "one-more", "wb") as f:
        f.write(b"x")
        f.flush()
    assert full.value.errno == errno.ENOSPC
    disk.free()
    (disk.path / "one-more").write_bytes(b"x" * 4096)
    assert (disk.path / "one-more").read_bytes() == b"x" * 4096


@needs_mount
def test_mount_refuses_a_directory_with_files_in_it(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mounting over this would hide it")
    with pytest.raises(DiskError, match="not empty"):
        Disk.mount(tmp_path)


def test_mount_without_root_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(DiskError, match=r"needs root \(running as uid 1000\)") as err:
        Disk.mount(tmp_path / "d")
    assert "\n" not in str(err.value)


@needs_mount
def test_full_disk_blocks_publishers_confirms_nothing_and_keeps_what_was_confirmed(
        disk: Disk, broker: BrokerProcess) -> None:
    ch = confirming_channel(broker)
    before = [f"m{i}".encode() for i in range(5)]
    for body in before:
        publish_confirmed(ch, body)
    ch.connection.close()
    disk.fill()
    blocked = connect(broker, blocked_timeout=2.0).channel()
    blocked.confirm_delivery()
    # FerryMQ raises its disk alarm (free space below disk_free_limit): connection.blocked, and it
    # reads no more publishes, so the confirm never comes and pika gives up on the blocked link.
    with pytest.raises(pika.exceptions.ConnectionBlockedTimeout):
        publish_confirmed(blocked, BIG)
    assert broker.alive()
    disk.free()
    after = confirming_channel(broker)  # the alarm clears on the broker's next check; then it reads
    publish_confirmed(after, b"after")
    after.connection.close()
    got = drain(broker)
    assert got[:5] == before and got[-1] == b"after"
    assert set(got[5:-1]) <= {BIG}  # only the unconfirmed one may have been stored after all


@needs_mount
def test_a_publish_written_to_a_full_disk_is_held_unconfirmed_until_space_returns(
        disk: Disk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRYMQ_DISK_FREE_LIMIT_BYTES", "0")  # no alarm: the write itself fails
    b = BrokerProcess(disk.path, free_port(), kafka_port=free_port(), http_port=free_port(),
                      log_path=tmp_path / "broker.log")
    b.start()
    try:
        ch = confirming_channel(b)
        publish_confirmed(ch, b"m0")
        disk.fill()
        outcome: list[str] = []

        def publish() -> None:
            try:
                publish_confirmed(ch, BIG)
                outcome.append("confirmed")
            except pika.exceptions.AMQPError as exc:
                outcome.append(repr(exc))
        t = threading.Thread(target=publish)
        t.start()
        t.join(2.0)
        assert outcome == [] and b.alive()  # ENOSPC: written nowhere, so not confirmed
        disk.free()
        t.join(10.0)
        assert outcome == ["confirmed"]  # the broker retried the write once there was room
        ch.connection.close()
        b.stop()
        b.start()  # what the tmpfs holds is what recovery finds
        assert drain(b) == [b"m0", BIG]
        log_lines = (tmp_path / "broker.log").read_text().splitlines()
        recovery = [line for line in log_lines if "recovered" in line]
        assert "recovered 1 durable queue(s)" in recovery[-1] and " 0 error(s)" in recovery[-1]
    finally:
        b.stop()
        b.kill9()


@needs_mount
def test_kafka_produce_to_a_full_disk_gets_a_storage_error_and_no_offset_is_skipped(disk: Disk) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import KafkaStorageError

    async def run(bootstrap: str) -> list[bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=1500,
                                    retry_backoff_ms=100)
        await producer.start()
        try:
            await producer.send_and_wait("lab-disk", b"m0")
            disk.fill()
            with pytest.raises(KafkaStorageError):  # Kafka's answer for a log it cannot write
                await producer.send_and_wait("lab-disk", BIG)
            disk.free()
            assert (await producer.send_and_wait("lab-disk", b"after")).offset == 1
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer("lab-disk", bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        await consumer.start()
        try:
            batches = await consumer.getmany(timeout_ms=5000, max_records=10)
            return [m.value for msgs in batches.values() for m in msgs if m.value is not None]
        finally:
            await consumer.stop()

    with EmbeddedBroker(data_dir=str(disk.path)) as broker:
        assert asyncio.run(run(broker.kafka_bootstrap)) == [b"m0", b"after"]


@needs_mount
def test_unmount_while_a_file_is_open_is_one_clear_error_and_works_once_closed(tmp_path: Path) -> None:
    d = Disk.mount(tmp_path / "busy", size_mib=1)
    try:
        with open(d.path / "held-open", "wb"):
            with pytest.raises(DiskError, match="umount") as err:
                d.unmount()
            assert "\n" not in str(err.value)
    finally:
        d.unmount()
    assert not d.mounted and not any(d.path.iterdir())
