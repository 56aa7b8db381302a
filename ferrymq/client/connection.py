"""A blocking AMQP 0-9-1 connection with one channel: the load generator's and the job system's.

Everything here runs a handful of times per connection (handshake, declares, confirm.select,
basic.qos, basic.consume), so it uses the project's client codec as it is: methods encoded by
``protocols.amqp.client.encode_method`` and read back by its ``FrameReader``. The per-message
paths (``traffic.py``) take over the socket and ``buf`` afterwards.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlparse

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.protocols.amqp import client as codec

CHANNEL = 1
RECV_BYTES = 256 * 1024
DEFAULT_FRAME_MAX = 131072


class BrokerClosed(RuntimeError):
    """The broker sent connection.close or channel.close (or dropped the socket)."""


@dataclass(frozen=True)
class AmqpUrl:
    """``amqp://`` or ``amqps://`` (TLS; RabbitMQ's URI query parameters ``cacertfile``,
    ``certfile``, ``keyfile`` and ``server_name_indication``; the server is always verified)."""

    host: str
    port: int
    user: str
    password: str
    vhost: str
    tls: bool = False
    cacertfile: str = ""
    certfile: str = ""
    keyfile: str = ""
    server_name: str = ""

    @classmethod
    def parse(cls, url: str) -> AmqpUrl:
        u = urlparse(url)
        if u.scheme not in ("amqp", "amqps", ""):
            raise ValueError(f"only amqp:// and amqps:// URLs are supported, not {url!r}")
        vhost = unquote(u.path[1:]) if len(u.path) > 1 else "/"
        query = {k: v[-1] for k, v in parse_qs(u.query).items()}
        tls = u.scheme == "amqps"
        return cls(u.hostname or "127.0.0.1", u.port or (5671 if tls else 5672),
                   unquote(u.username or "guest"), unquote(u.password or "guest"), vhost, tls,
                   query.get("cacertfile", ""),
                   query.get("certfile", ""), query.get("keyfile", ""),
                   query.get("server_name_indication", u.hostname or ""))

    def tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cacertfile or None)
        if self.certfile:
            ctx.load_cert_chain(self.certfile, self.keyfile or None)
        return ctx


class TlsSocket:
    """TLS over a plain socket through memory BIOs, with the plain socket's read contract the hot
    loops rely on (SO_RCVTIMEO and MSG_DONTWAIT raise BlockingIOError, as they act on the socket).

    Why not ``SSLContext.wrap_socket``: an SSLSocket's recv returns one TLS record per call (so a
    broker that sends one record per frame costs the generator a syscall per frame, which would
    measure the generator instead of the broker), and on a blocking SSLSocket CPython retries
    SSL_read after EAGAIN without end, spinning instead of timing out. Here one recv reads what the
    kernel has and decrypts every whole record in it."""

    def __init__(self, raw: socket.socket, ctx: ssl.SSLContext, server_name: str) -> None:
        self.raw = raw
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_name)
        while not self._handshake_step():
            data = raw.recv(RECV_BYTES)
            if not data:
                raise ConnectionError("the broker closed the connection during the TLS handshake")
            self.incoming.write(data)

    def _handshake_step(self) -> bool:
        try:
            self.tls.do_handshake()
            return True
        except ssl.SSLWantReadError:
            return False
        finally:
            self._flush()

    def _flush(self) -> None:
        out = self.outgoing.read()
        if out:
            self.raw.sendall(out)

    def sendall(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            view = view[self.tls.write(view):]
        self._flush()

    def recv(self, size: int, flags: int = 0) -> bytes:
        while True:
            plain = self._decrypted(size)
            if plain:
                return plain
            data = self.raw.recv(RECV_BYTES, flags)
            if not data:
                return b""
            self.incoming.write(data)

    def _decrypted(self, size: int) -> bytes:
        parts: list[bytes] = []
        n = 0
        while n < size:
            try:
                chunk = self.tls.read(size - n)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            parts.append(chunk)
            n += len(chunk)
        return b"".join(parts)

    def version(self) -> str | None:
        return self.tls.version()

    def __getattr__(self, name: str) -> Any:  # setsockopt, settimeout, fileno, close: the socket's
        return getattr(self.raw, name)


def set_recv_timeout(sock: socket.socket, seconds: float) -> None:
    """A kernel-level timeout (SO_RCVTIMEO) on a *blocking* socket: recv() is one syscall that
    returns data, or raises BlockingIOError after ``seconds`` without any. (Python's own socket
    timeout would poll() before every recv and send: two syscalls each.)"""
    sock.settimeout(None)
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                    struct.pack("ll", whole, int((seconds - whole) * 1e6)))


class Client:
    """A blocking connection with one channel (1). Slow-path helpers only; the hot loops in
    producer.py and consumer.py use ``sock`` and ``buf`` directly."""

    def __init__(self, url: str, *, timeout: float = 30.0, product: str = "ferrymq-bench",
                 nodelay: bool = True, properties: dict[str, Any] | None = None) -> None:
        self.url = AmqpUrl.parse(url)
        self.product = product
        self.properties = properties or {}  # more client properties, sent beside product
        raw = socket.create_connection((self.url.host, self.url.port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(nodelay))
        self.sock = raw
        if self.url.tls:  # duck-typed: the hot loops only recv, sendall and set options
            self.sock = cast(socket.socket, TlsSocket(raw, self.url.tls_context(), self.url.server_name))
        self.reader = codec.FrameReader()
        self.buf = bytearray()  # bytes received after the last setup reply: the hot loop's
        self.frame_max = DEFAULT_FRAME_MAX
        self.server_properties: dict[str, Any] = {}

    def send(self, method: Frame, channel: int = CHANNEL) -> None:
        self.sock.sendall(codec.encode_method(channel, method))

    def wait_for(self, *kinds: type) -> Any:
        """Read frames until one of ``kinds``; a close from the broker raises BrokerClosed.
        Whatever follows it in the same read is kept in ``buf`` for the hot loop."""
        data = bytes(self.buf)
        self.buf.clear()
        while True:
            for _, obj in self.reader.feed(data):
                if isinstance(obj, kinds):
                    self.buf += self.reader.take_pending()
                    return obj
                if isinstance(obj, c.Connection.Close | c.Channel.Close):
                    raise BrokerClosed(f"broker closed: {obj.reply_code} {obj.reply_text}")
            data = self.sock.recv(RECV_BYTES)
            if not data:
                raise BrokerClosed("broker closed the socket during setup")

    def call(self, method: Frame, reply: type, channel: int = CHANNEL) -> Any:
        self.send(method, channel)
        return self.wait_for(reply)

    def open(self, heartbeat: int = 0) -> Client:
        self.sock.sendall(codec.protocol_header())
        start = self.wait_for(c.Connection.Start)
        self.server_properties = dict(start.server_properties or {})
        self.send(c.Connection.StartOk(
            client_properties={"product": self.product,
                               "capabilities": {"publisher_confirms": True, "basic.nack": True},
                               **self.properties},
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

    def declare_exchange(self, exchange: str, kind: str, durable: bool = False,
                         arguments: dict[str, Any] | None = None) -> None:
        self.call(c.Exchange.Declare(exchange=exchange, exchange_type=kind, durable=durable,
                                     arguments=arguments), c.Exchange.DeclareOk)

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
            self.wait_for(c.Connection.CloseOk)
        except Exception:
            pass
        finally:
            try:
                self.sock.close()
            except OSError:
                pass
