"""Fuzzing a live listener: random and mutated streams over real sockets. The broker stays up,
each bad connection is closed on its own, and a well-behaved client beside them is unaffected."""

from __future__ import annotations

import random
import socket
import time

import pika

from tests.support.amqp import VALID, handshake_bytes

HANDSHAKE = handshake_bytes(channels=(1, 2))
VALID_TRAFFIC = b"".join(VALID[:-2])  # without the connection.close and heartbeat

ROUNDS = 60


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
