"""Before a client has logged in it can make the broker hold very little: over AMQP a frame before
tune-ok is at most 4096 bytes (RabbitMQ's initial_frame_max), and a larger claim ends the connection at
once, before any of it is buffered; over Kafka a client that began SASL may send only SASL requests, of at
most sasl.server.max.receive.size (524288) bytes. Raw sockets, so nothing in a client library helps."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pika
import pytest

from ferrymq import EmbeddedBroker

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(handshake_timeout_ms=500) as b:
        yield b


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.settimeout(5)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _frame_head(ftype: int, channel: int, size: int) -> bytes:
    return struct.pack(">BHI", ftype, channel, size)


def test_amqp_frame_claiming_more_than_4096_bytes_before_tune_closes_at_once(broker) -> None:
    sock = _connect(broker.amqp_port)
    sock.sendall(AMQP_HEADER)
    start = sock.recv(65536)
    assert start[:1] == b"\x01"  # connection.start
    sock.sendall(_frame_head(1, 0, 5_000))  # start-ok claiming 5000 bytes (< frame_max); none follow
    assert _read_until_closed(sock) == b""  # RabbitMQ's silent close: no connection.close, no waiting
    sock.close()


def test_amqp_start_ok_of_exactly_the_cap_is_still_read(broker) -> None:
    """4096 payload bytes are allowed (RabbitMQ: payload > frame_max is the error); the frame is
    parsed, so its bad content gets the usual answer instead of a framing close."""
    sock = _connect(broker.amqp_port)
    sock.sendall(AMQP_HEADER)
    sock.recv(65536)
    sock.sendall(_frame_head(1, 0, 4096) + b"\x00\x0a\x00\x0b" + b"\x00" * 4092 + b"\xce")
    answer = _read_until_closed(sock)
    assert b"FRAME_ERROR - cannot decode" in answer and b"frame_too_large" not in answer
    sock.close()


def test_amqp_client_that_never_finishes_the_handshake_is_dropped(broker) -> None:
    """RabbitMQ's handshake_timeout (here 500 ms): a peer that stops after the protocol header is cut."""
    sock = _connect(broker.amqp_port)
    sock.sendall(AMQP_HEADER)
    assert sock.recv(65536)[:1] == b"\x01"  # connection.start, then the client says nothing
    assert _read_until_closed(sock) == b""
    sock.close()


def test_amqp_frames_up_to_the_negotiated_frame_max_pass_after_tune(broker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    q = ch.queue_declare("", exclusive=True).method.queue
    ch.basic_publish("", q, b"b" * 100_000)  # one 100 kB body frame, under frame_max 131072
    assert ch.basic_get(q, auto_ack=True)[2] == b"b" * 100_000
    conn.close()


def _kafka_request(api_key: int, version: int, correlation: int, body: bytes) -> bytes:
    client = b"preauth-test"
    head = struct.pack(">hhih", api_key, version, correlation, len(client)) + client
    return struct.pack(">i", len(head) + len(body)) + head + body


def _kafka_response(sock: socket.socket) -> bytes:
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    return sock.recv(size, socket.MSG_WAITALL)


def _sasl_handshake(sock: socket.socket) -> None:
    mechanism = b"PLAIN"
    sock.sendall(_kafka_request(17, 1, 1, struct.pack(">h", len(mechanism)) + mechanism))
    answer = _kafka_response(sock)
    assert struct.unpack(">ih", answer[:6]) == (1, 0)  # correlation id, error_code NONE


def test_kafka_request_other_than_sasl_during_the_sasl_exchange_closes(broker) -> None:
    sock = _connect(broker.kafka_port)
    _sasl_handshake(sock)
    sock.sendall(_kafka_request(3, 0, 2, struct.pack(">i", 0)))  # Metadata before SaslAuthenticate
    assert _read_until_closed(sock) == b""
    sock.close()


def test_kafka_sasl_frame_above_sasl_server_max_receive_size_closes(broker) -> None:
    sock = _connect(broker.kafka_port)
    _sasl_handshake(sock)
    sock.sendall(struct.pack(">i", 524_289))  # a SaslAuthenticate claiming more than the cap
    assert _read_until_closed(sock) == b""
    sock.close()


def test_kafka_without_sasl_and_after_it_keeps_the_request_bound(broker) -> None:
    sock = _connect(broker.kafka_port)  # no SASL begun: Metadata is answered, as on Kafka's PLAINTEXT
    sock.sendall(_kafka_request(3, 0, 7, struct.pack(">i", 0)))
    assert struct.unpack(">i", _kafka_response(sock)[:4]) == (7,)
    _sasl_handshake(sock)
    token = b"\x00guest\x00guest"
    sock.sendall(_kafka_request(36, 0, 8, struct.pack(">i", len(token)) + token))
    assert struct.unpack(">ih", _kafka_response(sock)[:6]) == (8, 0)  # authenticated
    sock.sendall(_kafka_request(3, 0, 9, struct.pack(">i", 0)))  # and now anything goes again
    assert struct.unpack(">i", _kafka_response(sock)[:4]) == (9,)
    sock.close()
