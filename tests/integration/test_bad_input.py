"""Bad input over real sockets: the offending connection is refused, everyone else carries on."""

from __future__ import annotations

import socket
import struct
import uuid
from typing import Any

import pika
import pytest
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader

from ferrymq.testing import EmbeddedBroker

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_until_eof(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


class FrameReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def next(self) -> tuple[int, Any]:
        while True:
            if len(self.buf) >= 7:
                size = struct.unpack_from(">I", self.buf, 3)[0]
                if len(self.buf) >= size + 8:
                    used, channel, value = pframe.unmarshal(self.buf)
                    self.buf = self.buf[used:]
                    return channel, value
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed while a frame was expected"
            self.buf += chunk


def _handshake(sock: socket.socket) -> FrameReader:
    reader = FrameReader(sock)
    sock.sendall(pheader.ProtocolHeader().marshal())
    assert isinstance(reader.next()[1], c.Connection.Start)
    sock.sendall(pframe.marshal(c.Connection.StartOk(
        client_properties={"product": "raw"}, mechanism="PLAIN", response="\0guest\0guest",
        locale="en_US"), 0))
    _, tune = reader.next()
    assert isinstance(tune, c.Connection.Tune)
    sock.sendall(pframe.marshal(c.Connection.TuneOk(channel_max=tune.channel_max,
                                                    frame_max=tune.frame_max, heartbeat=0), 0))
    sock.sendall(pframe.marshal(c.Connection.Open(virtual_host="/"), 0))
    assert isinstance(reader.next()[1], c.Connection.OpenOk)
    return reader


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"])
def test_garbage_gets_the_protocol_header_back_and_is_closed(ferry: EmbeddedBroker,
                                                             garbage: bytes) -> None:
    with _connect(ferry.amqp_port) as sock:
        sock.sendall(garbage)
        assert _read_until_eof(sock) == PROTOCOL_HEADER


def test_oversized_frame_is_501_and_closed_while_others_keep_working(
        ferry: EmbeddedBroker) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(ferry.amqp_url))
    try:
        channel = connection.channel()
        queue = f"bad-input-{uuid.uuid4().hex}"
        channel.queue_declare(queue=queue, auto_delete=False)
        with _connect(ferry.amqp_port) as sock:
            reader = _handshake(sock)
            sock.sendall(pframe.marshal(c.Channel.Open(), 1))
            assert isinstance(reader.next()[1], c.Channel.OpenOk)
            # a frame head announcing 10 MB: far above the negotiated frame_max
            sock.sendall(struct.pack(">BHI", 1, 1, 10_000_000) + b"\x00" * 64)
            channel_no, close = reader.next()
            assert channel_no == 0 and isinstance(close, c.Connection.Close)
            assert close.reply_code == 501 and close.reply_text.startswith("FRAME_ERROR")
            assert _read_until_eof(sock) == reader.buf == b""
        channel.basic_publish(exchange="", routing_key=queue, body=b"still here")
        method, _, body = channel.basic_get(queue=queue, auto_ack=True)
        assert method is not None and body == b"still here"
        channel.queue_delete(queue=queue)
    finally:
        connection.close()


def test_message_over_message_max_is_refused_and_the_connection_stays_usable() -> None:
    with EmbeddedBroker(message_max_bytes=1000) as broker:
        connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        try:
            channel = connection.channel()
            queue = channel.queue_declare(queue="", exclusive=True).method.queue
            channel.basic_publish(exchange="", routing_key=queue, body=b"x" * 2000)
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
                channel.queue_declare(queue=queue, passive=True)  # a round trip to see the close
            assert info.value.reply_code == 406
            assert "PRECONDITION_FAILED" in info.value.reply_text
            assert not channel.is_open and connection.is_open
            fresh = connection.channel()
            fresh.basic_publish(exchange="", routing_key=queue, body=b"y" * 1000)
            method, _, body = fresh.basic_get(queue=queue, auto_ack=True)
            assert method is not None and body == b"y" * 1000
        finally:
            connection.close()
