"""kill -9 of the broker in the middle of transactions (a real `ferrymq serve`, aiokafka over real
sockets, fsync always): after the restart read_committed shows the committed transaction only;
the aborted and the open one stay hidden, and the open one is aborted by its timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from ferrymq.chaos.broker import free_port

TOPIC = "kill9-txn"


@contextlib.contextmanager
def serve(data_dir: Path, kafka_port: int) -> Iterator[str]:
    cmd = [sys.executable, "-c", "from ferrymq.cli import main; main()", "serve", "--data-dir",
           str(data_dir), "--amqp-port", "0", "--http-port", "0", "--kafka-port", str(kafka_port),
           "--fsync", "always"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", kafka_port), 0.2):
                break
            time.sleep(0.05)
        yield f"127.0.0.1:{kafka_port}"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


async def _transactions(bootstrap: str) -> None:
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="kill9", transaction_timeout_ms=2000)
    await p.start()
    async with p.transaction():
        await p.send(TOPIC, b"committed", partition=0)
    await p.begin_transaction()
    await p.send_and_wait(TOPIC, b"aborted", partition=0)
    await p.abort_transaction()
    await p.begin_transaction()
    await p.send_and_wait(TOPIC, b"open", partition=0)  # acked, so fsynced: then the broker dies


async def _read(bootstrap: str, isolation: str, want: int, timeout_s: float) -> list[bytes]:
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False)
    await c.start()
    tp = TopicPartition(TOPIC, 0)
    c.assign([tp])
    c.seek(tp, 0)
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(got) < want and time.monotonic() < deadline:
            for records in (await c.getmany(timeout_ms=200)).values():
                got += [r.value for r in records]
    finally:
        await c.stop()
    return got


async def _after(bootstrap: str) -> tuple[list[bytes], list[bytes], list[bytes]]:
    committed = await _read(bootstrap, "read_committed", 2, 1)
    everything = await _read(bootstrap, "read_uncommitted", 3, 5)
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="kill9-next")
    await p.start()
    async with p.transaction():
        await p.send(TOPIC, b"next", partition=0)
    await p.stop()
    return committed, everything, await _read(bootstrap, "read_committed", 2, 15)


@pytest.mark.timeout(120)
def test_a_broker_killed_mid_transaction_exposes_no_aborted_or_open_record(tmp_path: Path) -> None:
    port = free_port()
    with serve(tmp_path / "data", port) as bootstrap:
        asyncio.run(asyncio.wait_for(_transactions(bootstrap), 30))
    with serve(tmp_path / "data", port) as bootstrap:
        committed, everything, later = asyncio.run(_after(bootstrap))
    assert committed == [b"committed"]
    assert everything == [b"committed", b"aborted", b"open"]
    assert later == [b"committed", b"next"]
