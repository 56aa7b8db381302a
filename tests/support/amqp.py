"""Shared pieces for the AMQP codec tests: a recording handler, a client wired to the server
connection, readers for what the server wrote, frames marshalled by pamqp (the independent
encoder), and the corpus of valid client traffic the fuzz suites start from."""

from __future__ import annotations

from typing import Any

from pamqp import body as pbody
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat
from pamqp.base import Frame

from ferrymq.core.properties import Properties
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.properties import encode_properties
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


def parse_exact(data: bytes) -> list[tuple[int, Any]]:
    """Every frame in ``data`` as (channel, pamqp object); the bytes must be used up exactly."""
    out: list[tuple[int, Any]] = []
    pos = 0
    while pos < len(data):
        used, channel, value = pframe.unmarshal(data[pos:])
        assert used > 0
        out.append((channel, value))
        pos += used
    assert pos == len(data)
    return out


def drain_exact(conn: AMQPServerConnection) -> list[tuple[int, Any]]:
    """Like ``drain``, and the output must be whole frames with nothing left over."""
    data = b"".join(bytes(part) for part in conn.outbox)
    conn.outbox.clear()
    return parse_exact(data)


def only_close(conn: AMQPServerConnection) -> tuple[int, Any]:
    """The one frame the server wrote, which must be a connection.close or channel.close."""
    frames = drain_exact(conn)
    assert len(frames) == 1, frames
    channel, close = frames[0]
    assert isinstance(close, c.Connection.Close | c.Channel.Close), close
    return channel, close


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


# --- frames marshalled by pamqp --------------------------------------------------------------


def pamqp_frame(channel: int, value: Any) -> bytes:
    """One client frame, marshalled by pamqp."""
    return pframe.marshal(value, channel)


def pamqp_handshake(frame_max: int = 0, password: str = "guest") -> bytes:
    """Protocol header, start-ok, tune-ok (``frame_max``, no heartbeat), open, channel 1 open."""
    return b"".join((
        client.protocol_header(),
        pamqp_frame(0, c.Connection.StartOk(client_properties={"product": "test"}, mechanism="PLAIN",
                                            response=f"\0guest\0{password}", locale="en_US")),
        pamqp_frame(0, c.Connection.TuneOk(channel_max=0, frame_max=frame_max, heartbeat=0)),
        pamqp_frame(0, c.Connection.Open(virtual_host="/")),
        pamqp_frame(1, c.Channel.Open()),
    ))


def pamqp_publish(channel: int, exchange: str, routing_key: str, payload: bytes, *,
                  mandatory: bool = False, props: c.Basic.Properties | None = None,
                  chunk: int | None = None) -> bytes:
    """basic.publish + content header + body frames of at most ``chunk``, all by pamqp."""
    parts = [
        pamqp_frame(channel, c.Basic.Publish(exchange=exchange, routing_key=routing_key,
                                             mandatory=mandatory)),
        pamqp_frame(channel, pheader.ContentHeader(0, len(payload), props or c.Basic.Properties())),
    ]
    step = chunk or max(len(payload), 1)
    for i in range(0, len(payload), step):
        parts.append(pamqp_frame(channel, pbody.ContentBody(payload[i:i + step])))
    return b"".join(parts)


# --- the valid client traffic the fuzz suites mutate -------------------------------------------

# Encoded by the project's client codec; the last two are connection.close and a heartbeat.
VALID = [
    client.encode_publish(1, "ex", "rk", b"body" * 3, encode_properties(Properties(
        content_type="t", headers={"a": [1, {"b": None}]}, delivery_mode=2))),
    client.encode_publish(2, "", "q", b"x" * 5000, frame_max=4096),
    client.encode_ack(1, 3), client.encode_ack(1, 4, multiple=True),
    client.encode_method(1, c.Basic.Nack(5, requeue=True)),
    client.encode_method(1, c.Queue.Declare(queue="q", arguments={"x-max-length": 5})),
    client.encode_method(2, c.Channel.Flow(True)),
    client.encode_publish(1, "", "q", b""),
    client.encode_method(1, c.Basic.Nack(2, multiple=True)),
    client.encode_method(3, c.Channel.Open()),
    client.encode_method(2, c.Channel.Close(200, "", 0, 0)),
    client.encode_method(0, c.Connection.Close(200, "", 0, 0)),
    b"\x08\x00\x00\x00\x00\x00\x00\xce",
]


def _pamqp_valid() -> list[bytes]:
    """A realistic client stream on channels 1 and 2, one frame per entry, marshalled by pamqp."""
    props = c.Basic.Properties(content_type="text/plain", delivery_mode=2, priority=3,
                               headers={"k": "v", "n": 5, "b": True, "t": {"x": 1}})
    m = pamqp_frame
    return [
        m(1, c.Basic.Publish(exchange="ex", routing_key="rk", mandatory=True)),
        m(1, pheader.ContentHeader(0, 6000, props)),
        m(1, pbody.ContentBody(b"a" * 4000)),
        m(1, pbody.ContentBody(b"b" * 2000)),
        m(1, c.Basic.Publish(exchange="", routing_key="q")),
        m(1, pheader.ContentHeader(0, 0, c.Basic.Properties())),
        m(1, c.Basic.Ack(delivery_tag=1, multiple=True)),
        m(1, c.Basic.Nack(delivery_tag=2)),
        m(1, c.Basic.Reject(delivery_tag=3)),
        m(1, c.Queue.Declare(queue="q", durable=True, arguments={"x-max-priority": 10})),
        m(1, c.Basic.Get(queue="q")),
        m(0, pheartbeat.Heartbeat()),
        m(2, c.Channel.Open()),
        m(1, c.Channel.Flow(active=True)),
        m(2, c.Channel.Close(reply_code=200, reply_text="ok", class_id=0, method_id=0)),
        m(1, c.Channel.CloseOk()),
        m(0, c.Connection.Close(reply_code=200, reply_text="ok", class_id=0, method_id=0)),
        pamqp_publish(1, "e", "r", b"hello"),
    ]


PAMQP_VALID = _pamqp_valid()
