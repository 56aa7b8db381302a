"""Raw-socket AMQP client pieces for the load generator: handshake via pamqp (once), then
pre-encoded publish frames and a struct-only scan of incoming frames on the hot path."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlparse

from pamqp import commands as c
from pamqp import frame as pframe
from pamqp.base import Frame

from ferrymq.core.properties import Properties
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER
from ferrymq.protocols.amqp.properties import encode_properties

HEAD = struct.Struct(">BHI")
CM = struct.Struct(">I")
TAG_BITS = struct.Struct(">QB")
TS = struct.Struct(">Q")
DELIVER = (60 << 16) | 60
ACK = (60 << 16) | 80
NACK = (60 << 16) | 120
RECV_BYTES = 1 << 20


class Wire:
    """A blocking socket speaking just enough AMQP to drive a broker hard."""

    def __init__(self, url: str) -> None:
        u = urlparse(url)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 5672
        self.user, self.password = unquote(u.username or "guest"), unquote(u.password or "guest")
        self.vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
        self.sock = socket.create_connection((self.host, self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.frame_max = 131072

    def send(self, method: Frame, channel: int = 1) -> None:
        self.sock.sendall(pframe.marshal(method, channel))

    def expect(self, kind: type) -> Any:
        while True:
            for _, obj in self.frames():
                if isinstance(obj, kind):
                    return obj
                if isinstance(obj, c.Connection.Close | c.Channel.Close):
                    raise RuntimeError(f"broker closed: {obj.reply_code} {obj.reply_text}")

    def frames(self) -> Iterator[tuple[int, Any]]:
        """Slow path: whole pamqp frames, for the handshake and setup only."""
        data = self.sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionError("broker closed the socket")
        self.buf += data
        while len(self.buf) >= 8:
            _, _, size = HEAD.unpack_from(self.buf, 0)
            if len(self.buf) < size + 8:
                return
            consumed, channel, obj = pframe.unmarshal(bytes(self.buf[:size + 8]))
            del self.buf[:consumed]
            yield channel, obj

    def open(self, heartbeat: int = 0) -> Wire:
        self.sock.sendall(PROTOCOL_HEADER)
        self.expect(c.Connection.Start)
        self.send(c.Connection.StartOk({"product": "ferrymq-bench"}, "PLAIN",
                                       f"\0{self.user}\0{self.password}", "en_US"), 0)
        tune = self.expect(c.Connection.Tune)
        self.frame_max = tune.frame_max
        self.send(c.Connection.TuneOk(tune.channel_max, tune.frame_max, heartbeat), 0)
        self.send(c.Connection.Open(self.vhost), 0)
        self.expect(c.Connection.OpenOk)
        self.send(c.Channel.Open())
        self.expect(c.Channel.OpenOk)
        return self

    def declare(self, queue: str, durable: bool) -> None:
        self.send(c.Queue.Declare(queue=queue, durable=durable))
        self.expect(c.Queue.DeclareOk)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def publish_template(queue: str, size: int, persistent: bool) -> tuple[bytes, bytes]:
    """Frames for one publish, split where the 8-byte send timestamp goes (start of the body)."""
    assert size >= TS.size, "bodies carry an 8-byte timestamp"
    exchange, rk = b"", queue.encode()
    method = (b"\x00\x3c\x00\x28\x00\x00" + bytes((len(exchange),)) + exchange
              + bytes((len(rk),)) + rk + b"\x00")
    props = encode_properties(Properties(delivery_mode=2)) if persistent else b"\x00\x00"
    header = struct.pack(">HHQ", 60, 0, size) + props
    head = (HEAD.pack(1, 1, len(method)) + method + b"\xce" + HEAD.pack(2, 1, len(header))
            + header + b"\xce" + HEAD.pack(3, 1, size))
    tail = b"\x00" * (size - TS.size) + b"\xce"
    return head, tail


def ack_frame(tag: int, multiple: bool) -> bytes:
    return HEAD.pack(1, 1, 13) + CM.pack(ACK) + TAG_BITS.pack(tag, multiple) + b"\xce"


def qos_and_consume(wire: Wire, queue: str, prefetch: int) -> None:
    wire.send(c.Basic.Qos(prefetch_count=prefetch))
    wire.expect(c.Basic.QosOk)
    wire.send(c.Basic.Consume(queue=queue, consumer_tag="bench"))
    wire.expect(c.Basic.ConsumeOk)
