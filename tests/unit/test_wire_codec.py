"""The AMQP server codec, sans-IO, with pamqp as the independent client and oracle.

Every client frame is marshalled by pamqp and every server frame is unmarshalled by pamqp, so the
hand-written codec is checked against a second implementation rather than against itself.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from ferrymq.core.message import Message
from ferrymq.core.properties import EMPTY_PROPERTIES, Properties
from ferrymq.errors import AccessRefused, PreconditionFailed
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER
from ferrymq.protocols.amqp.properties import decode_properties, encode_properties
from ferrymq.protocols.amqp.server_properties import CAPABILITIES, server_properties

# --- helpers -------------------------------------------------------------------------------------
from tests.support.amqp import Recorder


class RecordingHandler(Recorder):
    """The shared Recorder, failing from the start and recording methods by name."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        super().__init__()
        self.fail = fail or {}

    def on_method(self, channel: int, method: Any) -> None:
        self._record("on_method", channel, method.name)


def m(channel: int, value: Any) -> bytes:
    """One client frame, marshalled by pamqp."""
    return pframe.marshal(value, channel)


def handshake_bytes(frame_max: int = 0, password: str = "guest") -> bytes:
    return b"".join((
        PROTOCOL_HEADER,
        m(0, c.Connection.StartOk(client_properties={"product": "test"}, mechanism="PLAIN",
                                  response=f"\0guest\0{password}", locale="en_US")),
        m(0, c.Connection.TuneOk(channel_max=0, frame_max=frame_max, heartbeat=0)),
        m(0, c.Connection.Open(virtual_host="/")),
        m(1, c.Channel.Open()),
    ))


def publish_bytes(channel: int, exchange: str, routing_key: str, payload: bytes, *,
                  mandatory: bool = False, props: c.Basic.Properties | None = None,
                  chunk: int | None = None) -> bytes:
    parts = [
        m(channel, c.Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=mandatory)),
        m(channel, pheader.ContentHeader(0, len(payload), props or c.Basic.Properties())),
    ]
    step = chunk or max(len(payload), 1)
    for i in range(0, len(payload), step):
        parts.append(m(channel, pbody.ContentBody(payload[i:i + step])))
    return b"".join(parts)


def parse(data: bytes) -> list[tuple[int, Any]]:
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


def drain(conn: AMQPServerConnection) -> list[tuple[int, Any]]:
    data = b"".join(bytes(part) for part in conn.outbox)
    conn.outbox.clear()
    return parse(data)


def new_conn(handler: RecordingHandler | None = None, **kwargs: Any) -> AMQPServerConnection:
    return AMQPServerConnection(handler or RecordingHandler(), server_properties(), **kwargs)


def opened(frame_max: int = 0, **kwargs: Any) -> tuple[AMQPServerConnection, RecordingHandler]:
    """A connection past the handshake with channel 1 open and the outbox emptied."""
    handler = kwargs.pop("handler", None) or RecordingHandler()
    conn = new_conn(handler, **kwargs)
    conn.receive_data(handshake_bytes(frame_max))
    frames = drain(conn)
    assert isinstance(frames[-1][1], c.Channel.OpenOk), frames
    handler.calls.clear()
    return conn, handler


def only_close(conn: AMQPServerConnection) -> tuple[int, Any]:
    frames = drain(conn)
    assert len(frames) == 1, frames
    channel, close = frames[0]
    assert isinstance(close, c.Connection.Close | c.Channel.Close), close
    return channel, close


# --- handshake -----------------------------------------------------------------------------------


def test_handshake_produces_start_tune_openok_and_channel_openok() -> None:
    handler = RecordingHandler()
    conn = new_conn(handler)
    conn.receive_data(handshake_bytes())
    frames = drain(conn)
    kinds = [type(f) for _, f in frames]
    assert kinds == [c.Connection.Start, c.Connection.Tune, c.Connection.OpenOk, c.Channel.OpenOk]
    assert [ch for ch, _ in frames] == [0, 0, 0, 1]
    start = frames[0][1]
    assert (start.version_major, start.version_minor) == (0, 9)
    assert "PLAIN" in start.mechanisms.split()
    caps = start.server_properties["capabilities"]
    assert set(caps) == set(CAPABILITIES) and len(caps) == 9 and all(caps.values())
    tune = frames[1][1]
    assert tune.frame_max == 131_072 and tune.channel_max == 2047
    assert handler.calls == [
        ("authenticate", "guest", "guest", "PLAIN"), ("open_vhost", "/"), ("on_channel_open", 1)]
    assert not conn.closed and conn.vhost == "/" and conn.username == "guest"


def _full_session() -> bytes:
    props = c.Basic.Properties(content_type="text/plain", headers={"a": 1, "b": "x"},
                               delivery_mode=2)
    return b"".join((
        handshake_bytes(4096),
        publish_bytes(1, "ex", "rk", b"hello", mandatory=True, props=props),
        publish_bytes(1, "", "q", b"x" * 10_000, chunk=4000),
        publish_bytes(1, "", "q", b""),
        m(1, c.Basic.Ack(delivery_tag=7, multiple=True)),
        m(1, c.Basic.Nack(delivery_tag=8, multiple=False, requeue=True)),
        m(1, c.Basic.Reject(delivery_tag=9, requeue=False)),
        m(1, c.Queue.Declare(queue="q1", durable=True)),
        m(0, pheartbeat.Heartbeat()),
        m(1, c.Channel.Flow(active=False)),
        m(1, c.Channel.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)),
        m(0, c.Connection.Close(reply_code=200, reply_text="bye", class_id=0, method_id=0)),
    ))


def test_one_byte_at_a_time_gives_the_same_calls_and_output() -> None:
    stream = _full_session()
    h1, h2 = RecordingHandler(), RecordingHandler()
    whole, bytewise = new_conn(h1), new_conn(h2)
    whole.receive_data(stream)
    for i in range(len(stream)):
        bytewise.receive_data(stream[i:i + 1])
    assert h1.calls == h2.calls
    names = [call[0] for call in h1.calls]
    assert names.count("on_publish") == 3
    assert ("on_ack", 1, 7, True) in h1.calls and ("on_nack", 1, 8, False, True) in h1.calls
    assert ("on_reject", 1, 9, False) in h1.calls and ("on_method", 1, "Queue.Declare") in h1.calls
    assert names[-2:] == ["on_channel_closed", "on_connection_closed"]
    out1 = b"".join(bytes(p) for p in whole.outbox)
    out2 = b"".join(bytes(p) for p in bytewise.outbox)
    assert out1 == out2
    kinds = [type(f) for _, f in parse(out1)]
    assert kinds[-3:] == [c.Channel.FlowOk, c.Channel.CloseOk, c.Connection.CloseOk]
    assert whole.closed and bytewise.closed


# --- publish -------------------------------------------------------------------------------------


def test_publish_in_one_body_frame_reaches_on_publish() -> None:
    conn, handler = opened()
    props = c.Basic.Properties(content_type="application/json", delivery_mode=2, priority=5,
                               message_id="m1", headers={"k": "v"})
    conn.receive_data(publish_bytes(1, "amq.direct", "a.key", b"payload", mandatory=True,
                                    props=props))
    [(name, ch, ex, rk, mandatory, body, decoded, raw)] = handler.calls
    assert (name, ch, ex, rk, mandatory, body) == (
        "on_publish", 1, "amq.direct", "a.key", True, b"payload")
    assert decoded.content_type == "application/json" and decoded.delivery_mode == 2
    assert decoded.priority == 5 and decoded.message_id == "m1" and decoded.headers == {"k": "v"}
    assert raw == props.marshal()
    assert conn.outbox == []


def test_body_split_over_several_frames_is_joined() -> None:
    conn, handler = opened()
    payload = bytes(range(256)) * 40
    conn.receive_data(publish_bytes(1, "", "q", payload, chunk=333))
    [call] = handler.calls
    assert call[:6] == ("on_publish", 1, "", "q", False, payload)
    assert call[6] == EMPTY_PROPERTIES
    assert not conn.outbox


def test_zero_length_body_is_published_at_the_content_header() -> None:
    conn, handler = opened()
    conn.receive_data(publish_bytes(1, "x", "y", b""))
    assert [call[:6] for call in handler.calls] == [("on_publish", 1, "x", "y", False, b"")]
    # and the channel accepts the next publish at once
    conn.receive_data(publish_bytes(1, "x", "z", b"1"))
    assert handler.calls[-1][:6] == ("on_publish", 1, "x", "z", False, b"1")
    assert not conn.outbox


# --- properties round trip -----------------------------------------------------------------------

_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                       exclude_categories=("Cs",)), min_size=1, max_size=20)
_short = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_./", min_size=1, max_size=20)
_scalar = st.one_of(_text, st.booleans(), st.integers(-(2**63), 2**63 - 1))
_headers = st.dictionaries(
    _short, st.one_of(_scalar, st.dictionaries(_short, _scalar, max_size=4)), max_size=6)

_PROPERTY_STRATEGY = st.fixed_dictionaries({}, optional={
    "content_type": _text, "content_encoding": _text, "headers": _headers,
    "delivery_mode": st.sampled_from([1, 2]), "priority": st.integers(0, 255),
    "correlation_id": _text, "reply_to": _text, "expiration": st.integers(0, 10**9).map(str),
    "message_id": _text, "timestamp": st.integers(0, 2**32 - 1), "type": _text,
    "user_id": _text, "app_id": _text,
})


def _pamqp_props(values: dict[str, Any]) -> c.Basic.Properties:
    kwargs = dict(values)
    if "type" in kwargs:
        kwargs["message_type"] = kwargs.pop("type")
    if "timestamp" in kwargs:
        kwargs["timestamp"] = datetime.fromtimestamp(kwargs["timestamp"], tz=UTC)
    return c.Basic.Properties(**kwargs)


def _pamqp_decode(raw: bytes) -> c.Basic.Properties:
    """Decode a property section with pamqp, via a whole content header frame."""
    payload = struct.pack(">HHQ", 60, 0, 0) + raw
    data = struct.pack(">BHI", 2, 1, len(payload)) + payload + b"\xce"
    used, _, value = pframe.unmarshal(data)
    assert used == len(data) and isinstance(value, pheader.ContentHeader)
    return value.properties


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PROPERTY_STRATEGY)
def test_properties_round_trip_against_pamqp(values: dict[str, Any]) -> None:
    expected = Properties(**values)
    # pamqp encodes, we decode (through a real content header frame)
    header_frame = pframe.marshal(pheader.ContentHeader(0, 3, _pamqp_props(values)), 1)
    raw = header_frame[7 + 12:-1]
    assert decode_properties(raw) == expected
    # we encode, pamqp decodes
    ours = encode_properties(expected)
    assert ours[:2] == raw[:2]  # the same flags (integer encodings may differ in width)
    assert decode_properties(ours) == expected
    theirs = _pamqp_decode(ours)
    for attr, value in values.items():
        got = getattr(theirs, "message_type" if attr == "type" else attr)
        if attr == "timestamp":
            got = int(got.timestamp())
        assert got == value, attr


def test_properties_encoded_by_us_decode_with_pamqp_and_through_the_codec() -> None:
    props = Properties(content_type="t", headers={"n": {"deep": True, "i": -5}, "s": "é"},
                       delivery_mode=2, priority=9, timestamp=1_700_000_000, type="kind")
    raw = encode_properties(props)
    theirs = _pamqp_decode(raw)
    assert theirs.headers == {"n": {"deep": True, "i": -5}, "s": "é"}
    assert theirs.message_type == "kind" and int(theirs.timestamp.timestamp()) == 1_700_000_000
    conn, handler = opened()
    data = b"".join((
        m(1, c.Basic.Publish(exchange="", routing_key="q")),
        struct.pack(">BHI", 2, 1, 12 + len(raw)), struct.pack(">HHQ", 60, 0, 1), raw, b"\xce",
        m(1, pbody.ContentBody(b"z")),
    ))
    conn.receive_data(data)
    [call] = handler.calls
    assert call[6] == props and call[7] == raw


# --- server -> client content --------------------------------------------------------------------


def _message(size: int) -> Message:
    props = Properties(content_type="text/plain", headers={"h": 1}, delivery_mode=2)
    return Message("ex", "rk", bytes(i % 251 for i in range(size)), props, None)


def _check_content(frames: list[tuple[int, Any]], size: int, frame_max: int) -> None:
    header = frames[1][1]
    assert isinstance(header, pheader.ContentHeader) and header.body_size == size
    assert header.properties.content_type == "text/plain"
    assert header.properties.headers == {"h": 1} and header.properties.delivery_mode == 2
    bodies = [f for _, f in frames[2:]]
    assert all(isinstance(b, pbody.ContentBody) for b in bodies)
    assert all(len(b.value) <= frame_max - 8 for b in bodies)
    assert b"".join(b.value for b in bodies) == bytes(i % 251 for i in range(size))
    assert len(bodies) == -(-size // (frame_max - 8))


@pytest.mark.parametrize("size", [0, 1, 4088, 4089, 10_000])
def test_send_deliver_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(4096)
    conn.send_deliver(1, "ctag", 42, True, "ex", "rk", _message(size))
    frames = drain(conn)
    assert {ch for ch, _ in frames} == {1}
    deliver = frames[0][1]
    assert isinstance(deliver, c.Basic.Deliver)
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered, deliver.exchange,
            deliver.routing_key) == ("ctag", 42, True, "ex", "rk")
    _check_content(frames, size, 4096)


@pytest.mark.parametrize("size", [0, 5000])
def test_send_get_ok_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(4096)
    conn.send_get_ok(1, 3, False, "ex", "rk", 17, _message(size))
    frames = drain(conn)
    get_ok = frames[0][1]
    assert isinstance(get_ok, c.Basic.GetOk)
    assert (get_ok.delivery_tag, get_ok.redelivered, get_ok.exchange, get_ok.routing_key,
            get_ok.message_count) == (3, False, "ex", "rk", 17)
    _check_content(frames, size, 4096)


@pytest.mark.parametrize("size", [7, 9000])
def test_send_return_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(4096)
    conn.send_return(1, 312, "NO_ROUTE", "ex", "rk", _message(size))
    frames = drain(conn)
    ret = frames[0][1]
    assert isinstance(ret, c.Basic.Return)
    assert (ret.reply_code, ret.reply_text, ret.exchange, ret.routing_key) == (
        312, "NO_ROUTE", "ex", "rk")
    _check_content(frames, size, 4096)


@pytest.mark.parametrize(("multiple", "ack"), [(False, True), (True, True), (True, False)])
def test_send_confirm_decodes_with_pamqp(multiple: bool, ack: bool) -> None:
    conn, _ = opened()
    conn.send_confirm(1, 2**40, multiple, ack)
    [(ch, confirm)] = drain(conn)
    assert ch == 1 and isinstance(confirm, c.Basic.Ack if ack else c.Basic.Nack)
    assert confirm.delivery_tag == 2**40 and confirm.multiple is multiple


# --- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\n\r\n", b"AMQP\x00\x00\x08\x00", b"\x01"])
def test_bad_protocol_header_gets_ours_and_closes(garbage: bytes) -> None:
    handler = RecordingHandler()
    conn = new_conn(handler)
    conn.receive_data(garbage)
    assert conn.outbox == [PROTOCOL_HEADER] and conn.closed and handler.calls == []


def test_frame_larger_than_frame_max_is_501_and_drops() -> None:
    conn, _ = opened(4096)
    conn.receive_data(struct.pack(">BHI", 1, 1, 4096 + 100))  # only the head: enough to refuse
    ch, close = only_close(conn)
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 501
    assert close.reply_text.startswith("FRAME_ERROR")
    assert conn.closed


def test_bad_frame_end_octet_is_501() -> None:
    conn, handler = opened()
    data = bytearray(m(1, c.Basic.Ack(delivery_tag=1)))
    data[-1] = 0x00
    conn.receive_data(bytes(data))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 501
    assert conn.closed and handler.calls == []


@pytest.mark.parametrize("channel", [0, 1])
def test_unknown_frame_type_is_501(channel: int) -> None:
    conn, _ = opened()
    conn.receive_data(struct.pack(">BHI", 9, channel, 2) + b"ab\xce")
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 501


def test_body_frame_without_publish_is_505() -> None:
    conn, handler = opened()
    conn.receive_data(m(1, pbody.ContentBody(b"stray")))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 505
    assert handler.calls == []


def test_method_on_unopened_channel_is_504() -> None:
    conn, handler = opened()
    conn.receive_data(m(2, c.Queue.Declare(queue="q")))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 504
    assert (close.class_id, close.method_id) == (50, 10)
    assert handler.calls == []


def test_second_channel_open_is_504() -> None:
    conn, _ = opened()
    conn.receive_data(m(1, c.Channel.Open()))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 504
    assert (close.class_id, close.method_id) == (20, 10)


def test_publish_with_immediate_is_540() -> None:
    conn, handler = opened()
    conn.receive_data(m(1, c.Basic.Publish(exchange="", routing_key="q", immediate=True)))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 540
    assert "immediate" in close.reply_text and (close.class_id, close.method_id) == (60, 40)
    assert handler.calls == []


def test_message_over_message_max_closes_the_channel_with_406() -> None:
    conn, handler = opened(message_max=100)
    conn.receive_data(publish_bytes(1, "", "q", b"x" * 101))
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    assert close.reply_text.startswith("PRECONDITION_FAILED") and "100" in close.reply_text
    assert (close.class_id, close.method_id) == (60, 40)
    assert handler.calls == [] and not conn.closed
    # exactly message_max is fine on another channel
    conn.receive_data(m(2, c.Channel.Open()) + publish_bytes(2, "", "q", b"y" * 100))
    assert handler.calls[-1][:6] == ("on_publish", 2, "", "q", False, b"y" * 100)


def test_handler_precondition_failed_on_ack_closes_the_channel_with_its_text() -> None:
    handler = RecordingHandler({"on_ack": PreconditionFailed("unknown delivery tag 5")})
    conn, _ = opened(handler=handler)
    conn.receive_data(m(1, c.Basic.Ack(delivery_tag=5)))
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    assert close.reply_text == "PRECONDITION_FAILED - unknown delivery tag 5"
    assert (close.class_id, close.method_id) == (60, 80)
    assert not conn.closed


_TRIGGERS = {
    "on_publish": publish_bytes(1, "", "q", b"abc"),
    "on_ack": m(1, c.Basic.Ack(delivery_tag=1)),
    "on_method": m(1, c.Queue.Declare(queue="q")),
    "on_channel_open": m(3, c.Channel.Open()),
    "on_flow": m(1, c.Channel.Flow(active=False)),
}


@pytest.mark.parametrize("hook", sorted(_TRIGGERS))
def test_handler_runtime_error_is_541_and_never_escapes(hook: str) -> None:
    handler = RecordingHandler()
    conn, _ = opened(handler=handler)
    handler.fail[hook] = RuntimeError("boom")
    conn.receive_data(_TRIGGERS[hook])
    ch, close = only_close(conn)
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 541
    assert close.reply_text.startswith("INTERNAL_ERROR") and "boom" in close.reply_text
    assert not conn.closed
    # closing: further input is ignored until close-ok
    conn.receive_data(b"".join(_TRIGGERS.values()))
    assert conn.outbox == [] and [call[0] for call in handler.calls] == [hook]
    conn.receive_data(m(0, c.Connection.CloseOk()))
    assert conn.closed


def test_wrong_password_is_403_access_refused() -> None:
    handler = RecordingHandler({"authenticate": AccessRefused("bad password")})
    conn = new_conn(handler)
    conn.receive_data(handshake_bytes(password="wrong"))
    frames = drain(conn)
    assert isinstance(frames[0][1], c.Connection.Start)
    [(ch, close)] = frames[1:]
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 403
    assert close.reply_text.startswith("ACCESS_REFUSED - Login was refused")
    assert conn.closed
    assert [call[0] for call in handler.calls] == ["authenticate"]


def test_frames_on_a_server_closed_channel_are_ignored_until_close_ok() -> None:
    conn, handler = opened()
    conn.receive_data(m(1, c.Basic.Publish(exchange="", routing_key="q")))  # mid-publish
    conn.close_channel(1, 406, "PRECONDITION_FAILED - stop", 60, 40)
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    conn.receive_data(b"".join((
        m(1, pheader.ContentHeader(0, 3, c.Basic.Properties())),
        m(1, pbody.ContentBody(b"abc")),
        publish_bytes(1, "", "q", b"more"),
        m(1, c.Basic.Ack(delivery_tag=1)),
        m(1, c.Queue.Declare(queue="q")),
        m(1, c.Channel.Open()),
    )))
    assert handler.calls == [] and conn.outbox == [] and not conn.closed
    conn.receive_data(m(1, c.Channel.CloseOk()))
    assert handler.calls == [("on_channel_closed", 1)] and conn.outbox == []
    conn.receive_data(m(1, c.Channel.Open()) + publish_bytes(1, "", "q", b"again"))
    assert [type(f) for _, f in drain(conn)] == [c.Channel.OpenOk]
    assert handler.calls[-1][:6] == ("on_publish", 1, "", "q", False, b"again")


def test_server_close_keeps_a_half_received_frame_in_sync_for_the_close_ok() -> None:
    """A server-initiated connection.close while a client frame is half in: the rest of that
    frame must still be skipped as a frame, so the client's close-ok is recognised."""
    conn, handler = opened()
    data = publish_bytes(1, "", "q", b"z" * 1000)
    conn.receive_data(data[:-500])
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 320
    assert not conn.closed
    conn.receive_data(data[-500:] + m(0, c.Connection.CloseOk()))
    assert conn.closed and conn.outbox == [] and handler.calls == []


def test_a_framing_error_while_closing_drops_the_connection() -> None:
    conn, _ = opened()
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    drain(conn)
    conn.receive_data(struct.pack(">BHI", 1, 1, 2**31) + b"\x00")  # no close-ok can follow this
    assert conn.closed and conn.outbox == []
