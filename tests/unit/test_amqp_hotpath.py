"""The hand-written hot-path codecs, checked against pamqp as the oracle."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp.body import ContentBody

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.protocols.amqp import client, hotpath
from ferrymq.protocols.amqp.frames import frame
from ferrymq.protocols.amqp.properties import encode_properties
from tests.support.amqp import drain_exact, opened

short = st.text(max_size=80).filter(lambda s: len(s.encode()) <= 255)
# pamqp's name pattern, for what pamqp itself must encode
names = st.text(alphabet="abcXYZ019-_.:@#,/+ ", max_size=127)
TAGS = st.integers(0, 2**63 - 1)  # pamqp reads longlong as signed; we write the spec's unsigned
bodies = st.binary(max_size=20_000)
frame_maxes = st.sampled_from([4096, 4104, 10_000, 131_072])
raw_props = st.sampled_from([
    b"\x00\x00",
    encode_properties(Properties(delivery_mode=2)),
    encode_properties(Properties(content_type="application/json", headers={"a": [1, "x"]},
                                 priority=9, timestamp=1_700_000_000, app_id="app")),
])


def _frames(out: list[bytes]) -> list[tuple[int, int, bytes]]:
    """(type, channel, payload) of every frame, checking the envelope."""
    data = b"".join(bytes(p) for p in out)
    frames, pos = [], 0
    while pos < len(data):
        ftype, channel, size = struct.unpack_from(">BHI", data, pos)
        assert data[pos + 7 + size] == 0xCE
        frames.append((ftype, channel, data[pos + 7:pos + 7 + size]))
        pos += size + 8
    return frames


def _unmarshal(out: list[bytes]) -> list[tuple[int, object]]:
    return list(client.FrameReader().feed(b"".join(bytes(p) for p in out)))


def _check_content(out: list[bytes], channel: int, frame_max: int, raw: bytes,
                   body: bytes) -> object:
    """The frames after the method: a header carrying ``raw``, then ``body`` in frames that fit
    frame_max. Returns the method pamqp decoded."""
    decoded = _unmarshal(out)
    frames = _frames(out)
    assert all(len(payload) + 8 <= frame_max for _, _, payload in frames)
    assert {ch for ch, _ in decoded} == {channel}
    method, header = decoded[0][1], decoded[1][1]
    assert isinstance(header, pheader.ContentHeader) and header.body_size == len(body)
    assert frames[1][2][12:] == raw  # the property section passed through byte for byte
    assert all(isinstance(f, ContentBody) for _, f in decoded[2:])
    assert b"".join(f.value for _, f in decoded[2:]) == body  # type: ignore[attr-defined]
    return method


@settings(max_examples=150, deadline=None)
@given(channel=st.integers(1, 65535), ctag=short, tag=TAGS,
       redelivered=st.booleans(), exchange=short, key=short, body=bodies, frame_max=frame_maxes,
       raw=raw_props)
def test_deliver_decodes_with_pamqp(channel: int, ctag: str, tag: int, redelivered: bool,
                                    exchange: str, key: str, body: bytes, frame_max: int,
                                    raw: bytes) -> None:
    out: list[bytes] = []
    hotpath.deliver_frames(out, channel, frame_max, ctag, tag, redelivered, exchange, key,
                           Message(exchange, key, body, raw_props=raw))
    method = _check_content(out, channel, frame_max, raw, body)
    assert isinstance(method, c.Basic.Deliver)
    assert (method.consumer_tag, method.delivery_tag, method.redelivered, method.exchange,
            method.routing_key) == (ctag, tag, redelivered, exchange, key)


@settings(max_examples=60, deadline=None)
@given(tag=TAGS, redelivered=st.booleans(), exchange=short, key=short,
       count=st.integers(0, 2**32 - 1), body=bodies, raw=raw_props)
def test_get_ok_decodes_with_pamqp(tag: int, redelivered: bool, exchange: str, key: str,
                                   count: int, body: bytes, raw: bytes) -> None:
    out: list[bytes] = []
    hotpath.get_ok_frames(out, 3, 4096, tag, redelivered, exchange, key, count,
                          Message(exchange, key, body, raw_props=raw))
    method = _check_content(out, 3, 4096, raw, body)
    assert isinstance(method, c.Basic.GetOk)
    assert (method.delivery_tag, method.redelivered, method.exchange, method.routing_key,
            method.message_count) == (tag, redelivered, exchange, key, count)


@settings(max_examples=60, deadline=None)
@given(code=st.sampled_from([312, 313]), text=short, exchange=short, key=short, body=bodies)
def test_return_decodes_with_pamqp(code: int, text: str, exchange: str, key: str,
                                   body: bytes) -> None:
    out: list[bytes] = []
    hotpath.return_frames(out, 2, 131072, code, text, exchange, key, Message(exchange, key, body))
    method = _check_content(out, 2, 131072, b"\x00\x00", body)
    assert isinstance(method, c.Basic.Return)
    assert (method.reply_code, method.reply_text, method.exchange, method.routing_key) == (
        code, text, exchange, key)


@given(channel=st.integers(0, 65535), tag=TAGS, multiple=st.booleans(),
       ack=st.booleans())
def test_confirms_decode_with_pamqp(channel: int, tag: int, multiple: bool, ack: bool) -> None:
    [(got_channel, method)] = _unmarshal([hotpath.confirm_frame(channel, tag, multiple, ack)])
    assert got_channel == channel
    assert isinstance(method, c.Basic.Ack if ack else c.Basic.Nack)
    assert (method.delivery_tag, method.multiple) == (tag, multiple)
    if not ack:
        assert method.requeue is False


def test_deliver_of_changed_properties_encodes_them_once_and_keeps_them() -> None:
    props = Properties(content_type="text/plain", headers={"x-death": [{"count": 1}]})
    message = Message("", "q", b"body", props, None)
    out: list[bytes] = []
    hotpath.deliver_frames(out, 1, 131072, "t", 1, False, "", "q", message)
    assert message.raw_props == encode_properties(props)
    header = _unmarshal(out)[1][1]
    assert header.properties.content_type == "text/plain"  # type: ignore[attr-defined]
    assert header.properties.headers == {"x-death": [{"count": 1}]}  # type: ignore[attr-defined]


def test_a_body_that_fits_one_frame_is_one_write() -> None:
    out: list[bytes] = []
    hotpath.deliver_frames(out, 1, 131072, "t", 1, False, "", "q", Message("", "q", b"x" * 100))
    assert len(out) == 1


def test_strings_that_are_not_utf8_pass_through_deliver() -> None:
    key = b"\xffkey".decode("utf-8", "surrogateescape")
    out: list[bytes] = []
    hotpath.deliver_frames(out, 1, 131072, "t", 1, False, "", key, Message("", key, b""))
    assert b"\x04\xffkey" in out[0]


@settings(max_examples=150, deadline=None)
@given(exchange=names, key=short, mandatory=st.booleans(), body=bodies, frame_max=frame_maxes,
       props=st.sampled_from([
           c.Basic.Properties(),
           c.Basic.Properties(delivery_mode=2, content_type="text/plain"),
           c.Basic.Properties(headers={"a": 1, "b": "two", "c": {"d": True}}, priority=5,
                              correlation_id="c", reply_to="r", expiration="1000",
                              message_id="m", message_type="t", user_id="u", app_id="a",
                              content_encoding="gzip"),
       ]))
def test_pamqp_encoded_publishes_decode_with_ours(exchange: str, key: str, mandatory: bool,
                                                  body: bytes, frame_max: int,
                                                  props: c.Basic.Properties) -> None:
    conn, handler = opened()
    method = c.Basic.Publish(exchange=exchange, routing_key=key, mandatory=mandatory)
    chunk = frame_max - 8
    stream = b"".join([
        pframe.marshal(method, 1), pframe.marshal(pheader.ContentHeader(0, len(body), props), 1),
        *(frame(3, 1, body[i:i + chunk]) for i in range(0, len(body), chunk)),
    ])
    conn.receive_data(stream)
    [(name, ch, got_exchange, got_key, got_mandatory, got_body, got_props, _)] = handler.calls
    assert (name, ch, got_exchange, got_key, got_mandatory, got_body) == (
        "on_publish", 1, exchange, key, mandatory, body)
    for attr in ("content_type", "content_encoding", "headers", "delivery_mode", "priority",
                 "correlation_id", "reply_to", "expiration", "message_id", "user_id", "app_id"):
        assert getattr(got_props, attr) == getattr(props, attr), attr
    assert got_props.type == props.message_type


def test_hotpath_decoders_reject_malformed_arguments() -> None:
    payload = client.encode_publish(1, "ex", "rk", b"")[7:]  # method payload + rest
    good_end = 4 + 2 + 3 + 3 + 1
    assert hotpath.decode_publish(payload, 0, good_end) == ("ex", "rk", 0)
    for end in (good_end - 1, good_end + 1, 5):
        try:
            hotpath.decode_publish(payload, 0, end)
        except (IndexError, ValueError):
            continue
        raise AssertionError(f"accepted end={end}")
    ack = client.encode_ack(1, 77, multiple=True)[7:-1]
    assert hotpath.decode_ack(ack, 0, len(ack)) == (77, 1)
    try:
        hotpath.decode_ack(ack + b"\x00", 0, len(ack) + 1)
    except ValueError:
        return
    raise AssertionError("accepted a long ack")


# Moved from tests/unit/test_wire_codec.py: through the connection's send_*, at the edges of a
# 4096 frame_max, in the fewest body frames.


def _edge_message(size: int) -> Message:
    props = Properties(content_type="text/plain", headers={"h": 1}, delivery_mode=2)
    return Message("ex", "rk", bytes(i % 251 for i in range(size)), props, None)


def _check_fewest_frames(frames: list[tuple[int, Any]], size: int, frame_max: int) -> None:
    header = frames[1][1]
    assert isinstance(header, pheader.ContentHeader) and header.body_size == size
    assert header.properties.content_type == "text/plain"
    assert header.properties.headers == {"h": 1} and header.properties.delivery_mode == 2
    bodies = [f for _, f in frames[2:]]
    assert all(isinstance(b, ContentBody) for b in bodies)
    assert all(len(b.value) <= frame_max - 8 for b in bodies)
    assert b"".join(b.value for b in bodies) == bytes(i % 251 for i in range(size))
    assert len(bodies) == -(-size // (frame_max - 8))


@pytest.mark.parametrize("size", [0, 1, 4088, 4089, 10_000])
def test_send_deliver_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(frame_max=4096)
    conn.send_deliver(1, "ctag", 42, True, "ex", "rk", _edge_message(size))
    frames = drain_exact(conn)
    assert {ch for ch, _ in frames} == {1}
    deliver = frames[0][1]
    assert isinstance(deliver, c.Basic.Deliver)
    assert (deliver.consumer_tag, deliver.delivery_tag, deliver.redelivered, deliver.exchange,
            deliver.routing_key) == ("ctag", 42, True, "ex", "rk")
    _check_fewest_frames(frames, size, 4096)


@pytest.mark.parametrize("size", [0, 5000])
def test_send_get_ok_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(frame_max=4096)
    conn.send_get_ok(1, 3, False, "ex", "rk", 17, _edge_message(size))
    frames = drain_exact(conn)
    get_ok = frames[0][1]
    assert isinstance(get_ok, c.Basic.GetOk)
    assert (get_ok.delivery_tag, get_ok.redelivered, get_ok.exchange, get_ok.routing_key,
            get_ok.message_count) == (3, False, "ex", "rk", 17)
    _check_fewest_frames(frames, size, 4096)


@pytest.mark.parametrize("size", [7, 9000])
def test_send_return_decodes_with_pamqp(size: int) -> None:
    conn, _ = opened(frame_max=4096)
    conn.send_return(1, 312, "NO_ROUTE", "ex", "rk", _edge_message(size))
    frames = drain_exact(conn)
    ret = frames[0][1]
    assert isinstance(ret, c.Basic.Return)
    assert (ret.reply_code, ret.reply_text, ret.exchange, ret.routing_key) == (
        312, "NO_ROUTE", "ex", "rk")
    _check_fewest_frames(frames, size, 4096)


@settings(max_examples=60, deadline=None)
@given(channel=st.integers(1, 65535), ctag=short, tag=TAGS, redelivered=st.booleans(),
       exchange=short, key=short)
def test_a_deliver_method_alone_is_the_head_of_deliver_frames(channel: int, ctag: str, tag: int,
                                                              redelivered: bool, exchange: str,
                                                              key: str) -> None:
    alone = hotpath.deliver_method(channel, ctag, tag, redelivered, exchange, key)
    out: list[bytes] = []
    hotpath.deliver_frames(out, channel, 131072, ctag, tag, redelivered, exchange, key,
                           Message(exchange, key, b"x"))
    assert b"".join(bytes(p) for p in out).startswith(alone)
    [(got_channel, method)] = _unmarshal([alone])
    assert got_channel == channel and isinstance(method, c.Basic.Deliver)
    assert (method.consumer_tag, method.delivery_tag, method.redelivered, method.exchange,
            method.routing_key) == (ctag, tag, redelivered, exchange, key)
