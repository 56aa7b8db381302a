"""Fuzzing a live listener: random and mutated streams over real sockets. The broker stays up,
each bad connection is closed on its own, and well-behaved clients beside them are unaffected: an
embedded broker with one pika client, then a `ferrymq serve` process taking mutated AMQP and Kafka
streams from many connections at once (ferrymq.fuzz's seeds and mutator) while pika and
confluent-kafka clients work to the end and the process never dies."""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import confluent_kafka
import pika
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.fuzz import amqp as fuzz_amqp
from ferrymq.fuzz import kafka as fuzz_kafka
from ferrymq.fuzz.mutate import mutate
from ferrymq.protocols.kafka.primitives import I32
from tests.support.amqp import VALID, handshake_bytes

HANDSHAKE = handshake_bytes(channels=(1, 2))
VALID_TRAFFIC = b"".join(VALID[:-2])  # without the connection.close and heartbeat

ROUNDS = 60
AMQP_SEEDS = fuzz_amqp.frame_seeds()
KAFKA_SEEDS = fuzz_kafka.header_seeds()
REGRESSIONS = Path(__file__).parents[1] / "fuzz" / "regressions"
KIO_CRASH = (REGRESSIONS / "kafka-requests" / "Crash-kio-compact-array-length-oom.bin").read_bytes()


def _junk(rng: random.Random) -> bytes:
    kind = rng.choice(["noise", "after-handshake", "mutated"])
    if kind == "noise":
        return rng.randbytes(rng.randrange(1, 400))
    if kind == "after-handshake":
        return HANDSHAKE + rng.randbytes(rng.randrange(1, 400))
    stream = bytearray(HANDSHAKE + VALID_TRAFFIC)
    for _ in range(rng.randrange(1, 5)):
        at = rng.randrange(len(HANDSHAKE), len(stream))
        stream[at] ^= 1 << rng.randrange(8)
    return bytes(stream)


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass  # the broker may reset a connection it closed: that is allowed


def test_junk_connections_never_disturb_a_good_client(ferry):
    rng = random.Random(20261122)
    good = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    ch = good.channel()
    ch.queue_declare("fuzz-survivor", auto_delete=True)
    for i in range(ROUNDS):
        _send(ferry.amqp_port, _junk(rng))
        ch.basic_publish("", "fuzz-survivor", f"{i}".encode())
        assert ch.basic_get("fuzz-survivor", auto_ack=True)[2] == f"{i}".encode()
    good.close()
    deadline = time.monotonic() + 3
    while ferry.call(lambda: len(ferry.running.amqp.connections)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ferry.call(lambda: len(ferry.running.amqp.connections)) == 0  # nothing leaked


# --- many fuzzing connections against a `ferrymq serve` process, AMQP and Kafka at once --------------

JUNK_WORKERS = 6
JUNK_PER_WORKER = 40
GOOD_ROUNDS = 40


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    base = tmp_path_factory.mktemp("fuzz-serve")
    broker = BrokerProcess(base / "data", free_port(), fsync="never", kafka_port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def _kafka_junk(rng: random.Random) -> bytes:
    """Mutated request streams, and the one request that used to abort the broker (kept framed)."""
    if rng.random() < 0.1:
        return I32.pack(len(KIO_CRASH)) + KIO_CRASH
    data = mutate(rng, KAFKA_SEEDS)
    return data if rng.random() < 0.5 else I32.pack(len(data)) + data  # framed or raw


def _junk_worker(seed: int, amqp_port: int, kafka_port: int) -> None:
    rng = random.Random(seed)
    for _ in range(JUNK_PER_WORKER):
        if rng.random() < 0.5:
            _send(amqp_port, fuzz_amqp._handshake() + mutate(rng, AMQP_SEEDS))
        else:
            _send(kafka_port, _kafka_junk(rng))


def _good_kafka_round_trip(bootstrap: str, count: int) -> list[bytes]:
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce("fuzz-survivor", f"k{i}".encode())
        producer.poll(0)
    assert producer.flush(20) == 0
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "fuzz-survivor",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([confluent_kafka.TopicPartition("fuzz-survivor", 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    return got


def test_fuzzing_connections_never_kill_the_broker_nor_disturb_real_clients(served: BrokerProcess) -> None:
    seed = random.SystemRandom().randrange(2**32)
    workers = [threading.Thread(target=_junk_worker, args=(seed + i, served.port, served.kafka_port))
               for i in range(JUNK_WORKERS)]
    for w in workers:
        w.start()
    good = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", served.port))
    ch = good.channel()
    ch.queue_declare("fuzz-survivor", auto_delete=True)
    ch.confirm_delivery()
    for i in range(GOOD_ROUNDS):
        ch.basic_publish("", "fuzz-survivor", f"{i}".encode())
        assert ch.basic_get("fuzz-survivor", auto_ack=True)[2] == f"{i}".encode(), f"seed {seed}"
    got = _good_kafka_round_trip(f"127.0.0.1:{served.kafka_port}", GOOD_ROUNDS)
    for w in workers:
        w.join(60)
    assert served.alive(), f"the broker died under fuzzing (seed {seed}); see {served.log_path}"
    ch.basic_publish("", "fuzz-survivor", b"after")  # the AMQP client kept its connection to the end
    assert ch.basic_get("fuzz-survivor", auto_ack=True)[2] == b"after"
    good.close()
    assert got == [f"k{i}".encode() for i in range(GOOD_ROUNDS)], f"seed {seed}"
