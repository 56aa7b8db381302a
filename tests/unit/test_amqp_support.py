"""Shared pieces for the AMQP codec tests: a recording handler, a client wired to the server
connection, and readers for what the server wrote. (No tests in this module.)"""

from __future__ import annotations

from typing import Any

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.server_properties import server_properties

HANDSHAKE_METHODS: list[tuple[int, Any]] = [
    (0, c.Connection.StartOk({"product": "test"}, "PLAIN", "\0guest\0guest", "en_US")),
    (0, c.Connection.TuneOk(0, 0, 60)),  # 0: take the server's values
    (0, c.Connection.Open("/")),
]


class Recorder:
    """A ConnectionHandler that records every call; ``fail[name]`` makes that call raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: dict[str, BaseException] = {}

    def _record(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def authenticate(self, username: str, password: str, mechanism: str) -> None:
        self._record("authenticate", username, password, mechanism)

    def open_vhost(self, vhost: str) -> None:
        self._record("open_vhost", vhost)

    def on_channel_open(self, channel: int) -> None:
        self._record("on_channel_open", channel)

    def on_channel_closed(self, channel: int) -> None:
        self._record("on_channel_closed", channel)

    def on_connection_closed(self) -> None:
        self._record("on_connection_closed")

    def on_flow(self, channel: int, active: bool) -> None:
        self._record("on_flow", channel, active)

    def on_publish(self, channel: int, exchange: str, routing_key: str, mandatory: bool,
                   message: Any) -> None:
        self._record("on_publish", channel, exchange, routing_key, mandatory, message.body,
                     message.props, message.raw_props)

    def on_ack(self, channel: int, delivery_tag: int, multiple: bool) -> None:
        self._record("on_ack", channel, delivery_tag, multiple)

    def on_nack(self, channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> None:
        self._record("on_nack", channel, delivery_tag, multiple, requeue)

    def on_reject(self, channel: int, delivery_tag: int, requeue: bool) -> None:
        self._record("on_reject", channel, delivery_tag, requeue)

    def on_method(self, channel: int, method: Any) -> None:
        self._record("on_method", channel, method)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]


def new_server(**kwargs: Any) -> tuple[AMQPServerConnection, Recorder]:
    handler = Recorder()
    return AMQPServerConnection(handler, server_properties(), **kwargs), handler


def handshake_bytes(channels: tuple[int, ...] = (1,)) -> bytes:
    parts = [client.protocol_header()]
    parts += [client.encode_method(ch, m) for ch, m in HANDSHAKE_METHODS]
    parts += [client.encode_method(ch, c.Channel.Open()) for ch in channels]
    return b"".join(parts)


def opened(channels: tuple[int, ...] = (1,), **kwargs: Any) -> tuple[AMQPServerConnection,
                                                                        Recorder]:
    """A server connection past the handshake with ``channels`` open; outbox and calls cleared."""
    conn, handler = new_server(**kwargs)
    conn.receive_data(handshake_bytes(channels))
    assert not conn.closed, drain(conn)
    conn.outbox.clear()
    handler.calls.clear()
    return conn, handler


def drain(conn: AMQPServerConnection) -> list[tuple[int, Any]]:
    """Every frame the server wrote since the last drain, as (channel, pamqp object)."""
    data = b"".join(bytes(part) for part in conn.outbox)
    conn.outbox.clear()
    return list(client.FrameReader().feed(data))


def last_close(conn: AMQPServerConnection) -> Any:
    """The connection.close or channel.close the server sent last."""
    closes = [f for _, f in drain(conn) if isinstance(f, c.Connection.Close | c.Channel.Close)]
    assert closes, "the server sent no close"
    return closes[-1]


def feed_bytewise(conn: AMQPServerConnection, data: bytes) -> None:
    for i in range(len(data)):
        conn.receive_data(data[i:i + 1])


def unvalidated(method: Any, **values: Any) -> Any:
    """``method`` with ``values`` set, past pamqp's name pattern (RabbitMQ accepts any UTF-8)."""
    for name, value in values.items():
        setattr(method, name, value)
    return method


def comparable(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Handler calls with pamqp objects (which compare by identity) as (type, fields)."""
    return [tuple((type(a), dict(a)) if isinstance(a, Frame) else a for a in call)
            for call in calls]
