"""Just enough client-side AMQP 0-9-1 to drive a broker hard from one blocking socket.

Setup (handshake, channel.open, queue.declare, confirm.select, basic.qos, basic.consume) goes
through pamqp: it runs a handful of times per connection. The per-message paths do not touch
pamqp at all: a publish is pre-encoded once into a ``PublishTemplate`` (method frame, content
header frame, body frame) with an 8-byte hole at the start of the body for the send time, and
incoming bytes are scanned with ``struct`` only, for the few frames the generator cares about:
``basic.ack``/``basic.nack`` (publisher confirms) and ``basic.deliver`` plus the first body
frame behind it (delivery tag and send time).

Frame layout (AMQP 0-9-1, 4.2.3): type:u8 channel:u16 size:u32 payload[size] 0xCE. Method
payloads start with class:u16 method:u16, read here as one u32.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp.base import Frame

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
HEAD = struct.Struct(">BHI")  # frame type, channel, payload size
U32 = struct.Struct(">I")
U16 = struct.Struct(">H")
TAG_BIT = struct.Struct(">QB")
TS = struct.Struct(">Q")  # the send time, time.monotonic_ns(), first 8 body bytes
MIN_SIZE = 9  # body: send time (8 bytes), then the attempt count of a retried job (1 byte)
ACK = struct.Struct(">BHIIQBB")  # a whole basic.ack frame: 8 + 13 + 1 bytes

METHOD, HEADER, BODY, HEARTBEAT = 1, 2, 3, 8
BASIC_DELIVER = (60 << 16) | 60
BASIC_ACK = (60 << 16) | 80
BASIC_NACK = (60 << 16) | 120
BASIC_PUBLISH = (60 << 16) | 40
BASIC_RETURN = (60 << 16) | 50
BASIC_REJECT = (60 << 16) | 90
CONNECTION_CLOSE = (10 << 16) | 50
CONNECTION_BLOCKED = (10 << 16) | 60
CONNECTION_UNBLOCKED = (10 << 16) | 61
CHANNEL_CLOSE = (20 << 16) | 40
CONFIRMS = frozenset((BASIC_ACK, BASIC_NACK))
CLOSES = frozenset((CONNECTION_CLOSE, CHANNEL_CLOSE))
CHANNEL = 1
RECV_BYTES = 256 * 1024
DEFAULT_FRAME_MAX = 131072


class BrokerClosed(RuntimeError):
    """The broker sent connection.close or channel.close (or dropped the socket)."""


@dataclass(frozen=True)
class AmqpUrl:
    host: str
    port: int
    user: str
    password: str
    vhost: str

    @classmethod
    def parse(cls, url: str) -> AmqpUrl:
        u = urlparse(url)
        if u.scheme not in ("amqp", ""):
            raise ValueError(f"only amqp:// URLs are supported, not {url!r}")
        vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
        return cls(u.hostname or "127.0.0.1", u.port or 5672, unquote(u.username or "guest"),
                   unquote(u.password or "guest"), vhost)


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    """A kernel-level timeout (SO_RCVTIMEO) on a *blocking* socket: recv() is one syscall that
    returns data, or raises BlockingIOError after ``seconds`` without any. (Python's own socket
    timeout would poll() before every recv and send: two syscalls each.)"""
    sock.settimeout(None)
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", whole, int((seconds - whole) * 1e6)))


def ack_frame(tag: int, multiple: bool = False, channel: int = CHANNEL) -> bytes:
    return ACK.pack(METHOD, channel, 13, BASIC_ACK, tag, multiple, FRAME_END)


def reject_frame(tag: int, requeue: bool = False, channel: int = CHANNEL) -> bytes:
    """basic.reject: same layout as basic.ack (tag u64 + one bit)."""
    return ACK.pack(METHOD, channel, 13, BASIC_REJECT, tag, requeue, FRAME_END)


def close_reason(payload: bytes | bytearray | memoryview, pos: int) -> str:
    """'code text' of a connection.close / channel.close frame whose payload starts at pos."""
    (code,) = U16.unpack_from(payload, pos + 4)
    n = payload[pos + 6]
    text = bytes(payload[pos + 7:pos + 7 + n]).decode("utf-8", "replace")
    return f"{code} {text}"


class Client:
    """A blocking connection with one channel (1). Slow-path helpers only; the hot loops in
    producer.py and consumer.py use ``sock`` and ``buf`` directly."""

    def __init__(self, url: str, *, timeout: float = 30.0, product: str = "ferrymq-bench",
                 nodelay: bool = True) -> None:
        self.url = AmqpUrl.parse(url)
        self.product = product
        self.sock = socket.create_connection((self.url.host, self.url.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
        self.buf = bytearray()  # bytes received but not yet parsed: handed to the hot loop
        self.frame_max = DEFAULT_FRAME_MAX
        self.server_properties: dict[str, Any] = {}

    # -- slow path ---------------------------------------------------------------------------

    def send(self, method: Frame, channel: int = CHANNEL) -> None:
        self.sock.sendall(pframe.marshal(method, channel))

    def _next_frame(self) -> tuple[int, Any]:
        while True:
            if len(self.buf) >= 7:
                _, _, size = HEAD.unpack_from(self.buf, 0)
                if len(self.buf) >= size + 8:
                    consumed, channel, obj = pframe.unmarshal(bytes(self.buf[:size + 8]))
                    del self.buf[:consumed]
                    return channel, obj
            data = self.sock.recv(RECV_BYTES)
            if not data:
                raise BrokerClosed("broker closed the socket during setup")
            self.buf += data

    def wait_for(self, *kinds: type) -> Any:
        """Read frames until one of ``kinds``; a close from the broker raises BrokerClosed."""
        while True:
            _, obj = self._next_frame()
            if isinstance(obj, kinds):
                return obj
            if isinstance(obj, c.Connection.Close | c.Channel.Close):
                raise BrokerClosed(f"broker closed: {obj.reply_code} {obj.reply_text}")

    def call(self, method: Frame, reply: type, channel: int = CHANNEL) -> Any:
        self.send(method, channel)
        return self.wait_for(reply)

    def open(self, heartbeat: int = 0) -> Client:
        self.sock.sendall(PROTOCOL_HEADER)
        start = self.wait_for(c.Connection.Start)
        self.server_properties = dict(start.server_properties or {})
        self.send(c.Connection.StartOk(
            client_properties={"product": self.product,
                               "capabilities": {"publisher_confirms": True, "basic.nack": True}},
            mechanism="PLAIN", response=f"\0{self.url.user}\0{self.url.password}",
            locale="en_US"), 0)
        tune = self.wait_for(c.Connection.Tune)
        self.frame_max = tune.frame_max or DEFAULT_FRAME_MAX
        self.send(c.Connection.TuneOk(tune.channel_max, self.frame_max, heartbeat), 0)
        self.call(c.Connection.Open(self.url.vhost), c.Connection.OpenOk, 0)
        self.call(c.Channel.Open(), c.Channel.OpenOk)
        return self

    def declare_queue(self, queue: str, durable: bool, arguments: dict[str, Any] | None = None,
                      passive: bool = False) -> Any:
        """queue.declare; returns declare-ok (``message_count`` is the ready depth)."""
        return self.call(c.Queue.Declare(queue=queue, durable=durable, passive=passive,
                                         arguments=arguments), c.Queue.DeclareOk)

    def declare_exchange(self, exchange: str, kind: str, durable: bool = False) -> None:
        self.call(c.Exchange.Declare(exchange=exchange, exchange_type=kind, durable=durable),
                  c.Exchange.DeclareOk)

    def bind(self, queue: str, exchange: str, routing_key: str = "") -> None:
        self.call(c.Queue.Bind(queue=queue, exchange=exchange, routing_key=routing_key), c.Queue.BindOk)

    def delete_queue(self, queue: str) -> None:
        self.call(c.Queue.Delete(queue=queue), c.Queue.DeleteOk)

    def delete_exchange(self, exchange: str) -> None:
        self.call(c.Exchange.Delete(exchange=exchange), c.Exchange.DeleteOk)

    def confirm_select(self) -> None:
        self.call(c.Confirm.Select(), c.Confirm.SelectOk)

    def consume(self, queue: str, prefetch: int, tag: str = "ferrymq-bench",
                arguments: dict[str, Any] | None = None) -> None:
        self.call(c.Basic.Qos(prefetch_count=prefetch), c.Basic.QosOk)
        # Deliveries may follow consume-ok in the same read: they stay in self.buf.
        self.call(c.Basic.Consume(queue=queue, consumer_tag=tag, arguments=arguments), c.Basic.ConsumeOk)

    def close(self, timeout: float = 5.0) -> None:
        """connection.close and wait (briefly) for close-ok: everything sent before it has then
        been processed by the broker. Never raises."""
        try:
            self.sock.settimeout(timeout)
            self.send(c.Connection.Close(200, "bye", 0, 0), 0)
            while True:
                _, obj = self._next_frame()
                if isinstance(obj, c.Connection.CloseOk | c.Connection.Close):
                    break
        except Exception:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass


class PublishTemplate:
    """One basic.publish (by default to the default exchange, routing key = queue) pre-encoded as
    bytes, split around the 8-byte send time at the start of the body:

        prefix = method frame + content header frame + first body frame's head
        suffix = rest of the first body frame + frame end [+ further body frames]

    ``one(ts)`` is ``prefix + TS.pack(ts) + suffix``: two concatenations, no encoding."""

    def __init__(self, routing_key: str, size: int, *, persistent: bool = False,
                 frame_max: int = DEFAULT_FRAME_MAX, exchange: str = "", channel: int = CHANNEL) -> None:
        if size < MIN_SIZE:
            raise ValueError(f"bodies carry a {MIN_SIZE}-byte stamp (send time, attempt): "
                             f"--size must be >= {MIN_SIZE}")
        method = pframe.marshal(c.Basic.Publish(exchange=exchange, routing_key=routing_key), channel)
        props = c.Basic.Properties(delivery_mode=2) if persistent else c.Basic.Properties()
        header = pframe.marshal(pheader.ContentHeader(0, size, props), channel)
        chunk = frame_max - 8  # payload room in one body frame
        first = min(size, chunk)
        rest = []
        for offset in range(first, size, chunk):
            n = min(chunk, size - offset)
            rest.append(HEAD.pack(BODY, channel, n) + bytes(n) + FRAME_END_BYTE)
        self.size = size
        self.prefix = method + header + HEAD.pack(BODY, channel, first)
        self.suffix = bytes(first - TS.size) + FRAME_END_BYTE + b"".join(rest)
        self.frame_bytes = len(self.prefix) + TS.size + len(self.suffix)

    def one(self, ts_ns: int) -> bytes:
        return self.prefix + TS.pack(ts_ns) + self.suffix

    def same_time(self, ts_ns: int, n: int) -> bytes:
        """n publishes stamped alike (they leave in one write, so they are sent alike)."""
        return self.one(ts_ns) * n

    def stamped(self, stamps: list[int] | range) -> bytes:
        """One publish per stamp (fixed-rate mode: each carries its intended send time)."""
        prefix, suffix, pack = self.prefix, self.suffix, TS.pack
        return b"".join([prefix + pack(ts) + suffix for ts in stamps])

    def retry(self, ts_ns: int, attempt: int) -> bytes:
        """A republish of a failed job: the original send time, the attempt count in body[8]."""
        return self.prefix + TS.pack(ts_ns) + bytes((min(attempt, 255),)) + self.suffix[1:]


class ConfirmTracker:
    """Publisher-confirm accounting over delivery tags 1..n, for acks and nacks, single or
    multiple, in any order. The common case (in-order, or multiple) touches two ints."""

    __slots__ = ("acked", "nacked", "pending", "upto")

    def __init__(self) -> None:
        self.upto = 0  # every tag <= upto is settled
        self.pending: set[int] = set()  # settled tags above upto (out-of-order singles)
        self.acked = 0
        self.nacked = 0

    @property
    def settled(self) -> int:
        return self.acked + self.nacked

    def settle(self, tag: int, multiple: bool, nack: bool) -> None:
        if tag <= self.upto or tag in self.pending:
            return
        if multiple:
            newly = tag - self.upto
            if self.pending:
                below = {t for t in self.pending if t <= tag}
                newly -= len(below)
                self.pending -= below
            self.upto = tag
        else:
            newly = 1
            if tag == self.upto + 1:
                self.upto = tag
            else:
                self.pending.add(tag)
        while self.pending and self.upto + 1 in self.pending:
            self.upto += 1
            self.pending.discard(self.upto)
        if nack:
            self.nacked += newly
        else:
            self.acked += newly

    def feed(self, buf: bytearray) -> int:
        """Scan whole frames in buf for confirms; returns the bytes consumed (caller deletes).
        Raises BrokerClosed on connection.close / channel.close."""
        pos, n = 0, len(buf)
        unpack_head, unpack_u32, unpack_tag = HEAD.unpack_from, U32.unpack_from, TAG_BIT.unpack_from
        while n - pos >= 8:
            ftype, _, size = unpack_head(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if ftype == METHOD:
                (cm,) = unpack_u32(buf, pos + 7)
                if cm in CONFIRMS:
                    tag, bits = unpack_tag(buf, pos + 11)
                    upto = self.upto
                    if not self.pending and (tag == upto + 1 or (bits & 1 and tag > upto)):
                        self.upto = tag  # fast path: in order, or a multiple beyond upto
                        if cm == BASIC_ACK:
                            self.acked += tag - upto
                        else:
                            self.nacked += tag - upto
                    else:
                        self.settle(tag, bool(bits & 1), cm == BASIC_NACK)
                elif cm in CLOSES:
                    raise BrokerClosed(f"broker closed: {close_reason(buf, pos + 7)}")
            pos = end
        return pos


class DeliveryScanner:
    """Finds basic.deliver frames (delivery tag) and the send time at the start of the first
    body frame of each delivery. Frames split across reads are left in the buffer."""

    __slots__ = ("want_stamp",)

    def __init__(self) -> None:
        self.want_stamp = False  # a content header was seen; its first body frame is next

    def feed(self, buf: bytearray, tags: list[int], stamps: list[int],
             attempts: list[int] | None = None) -> int:
        """Appends each delivery's tag and send time (and body[8], the attempt count, when
        ``attempts`` is given); returns the bytes consumed."""
        pos, n = 0, len(buf)
        want = self.want_stamp
        unpack_head, unpack_u32, unpack_q = HEAD.unpack_from, U32.unpack_from, TS.unpack_from
        while n - pos >= 8:
            ftype, _, size = unpack_head(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if ftype == BODY:
                if want:
                    stamps.append(unpack_q(buf, pos + 7)[0])
                    if attempts is not None:
                        attempts.append(buf[pos + 15])
                    want = False
            elif ftype == HEADER:
                want = True
            elif ftype == METHOD:
                (cm,) = unpack_u32(buf, pos + 7)
                if cm == BASIC_DELIVER:
                    # consumer-tag shortstr, then delivery-tag u64
                    tags.append(unpack_q(buf, pos + 12 + buf[pos + 11])[0])
                elif cm in CLOSES:
                    raise BrokerClosed(f"broker closed: {close_reason(buf, pos + 7)}")
            pos = end
        self.want_stamp = want
        return pos


def check_for_close(buf: bytearray) -> int:
    """Skip whole frames (fire-and-forget producer), raising on a close; returns bytes consumed."""
    pos, n = 0, len(buf)
    while n - pos >= 8:
        ftype, _, size = HEAD.unpack_from(buf, pos)
        end = pos + size + 8
        if end > n:
            break
        if ftype == METHOD:
            (cm,) = U32.unpack_from(buf, pos + 7)
            if cm in CLOSES:
                raise BrokerClosed(f"broker closed: {close_reason(buf, pos + 7)}")
        pos = end
    return pos
