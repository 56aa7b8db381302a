"""Content assembly (publish, header, body frames) and framing errors."""

from __future__ import annotations

import struct

import pytest
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp.body import ContentBody

from ferrymq.core.properties import EMPTY_PROPERTIES, Properties
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.frames import frame
from ferrymq.protocols.amqp.properties import encode_properties
from tests.support.amqp import (
    comparable,
    drain,
    feed_bytewise,
    last_close,
    only_close,
    opened,
    pamqp_frame,
    pamqp_publish,
)


def _publishes(handler) -> list[tuple]:  # type: ignore[no-untyped-def]
    return [call for call in handler.calls if call[0] == "on_publish"]


def test_publish_header_and_body_become_one_on_publish_call() -> None:
    conn, handler = opened()
    raw = encode_properties(Properties(content_type="text/plain", delivery_mode=2))
    conn.receive_data(client.encode_publish(1, "amq.topic", "a.b", b"hello", raw, mandatory=True))
    [(_, ch, exchange, key, mandatory, body, props, raw_props)] = _publishes(handler)
    assert (ch, exchange, key, mandatory, body) == (1, "amq.topic", "a.b", True, b"hello")
    assert props == Properties(content_type="text/plain", delivery_mode=2)
    assert raw_props == raw and type(body) is bytes
    assert drain(conn) == []


def test_a_pamqp_encoded_publish_decodes_the_same() -> None:
    conn, handler = opened()
    props = c.Basic.Properties(content_type="application/json", headers={"k": "v", "n": 7},
                               priority=3, message_id="m-1", timestamp=None)
    conn.receive_data(pframe.marshal(c.Basic.Publish(exchange="ex", routing_key="rk"), 1)
                      + pframe.marshal(pheader.ContentHeader(0, 3, props), 1)
                      + frame(3, 1, b"abc"))
    [(_, _, exchange, key, mandatory, body, got, _)] = _publishes(handler)
    assert (exchange, key, mandatory, body) == ("ex", "rk", False, b"abc")
    assert got == Properties(content_type="application/json", headers={"k": "v", "n": 7},
                             priority=3, message_id="m-1")


def test_a_body_split_over_many_frames_is_joined() -> None:
    conn, handler = opened()
    body = bytes(range(256)) * 100
    conn.receive_data(client.encode_publish(1, "", "q", body, frame_max=4096))
    [(_, _, _, _, _, got, props, _)] = _publishes(handler)
    assert got == body and props is EMPTY_PROPERTIES


def test_an_empty_body_needs_no_body_frame() -> None:
    conn, handler = opened()
    conn.receive_data(client.encode_publish(1, "", "q", b""))
    assert _publishes(handler)[0][5] == b""


def test_publishes_interleaved_across_channels_assemble_separately() -> None:
    conn, handler = opened(channels=(1, 2))
    a = client.encode_publish(1, "", "a", b"A" * 10, frame_max=4096)
    b = client.encode_publish(2, "", "b", b"B" * 10, frame_max=4096)
    # method and header of each, then the bodies the other way round
    a_head, a_body = a[:-18], a[-18:]
    b_head, b_body = b[:-18], b[-18:]
    conn.receive_data(a_head + b_head + b_body + a_body)
    assert [(call[1], call[5]) for call in _publishes(handler)] == [(2, b"B" * 10), (1, b"A" * 10)]


def test_identical_header_less_properties_are_shared_between_messages() -> None:
    conn, handler = opened()
    raw = encode_properties(Properties(delivery_mode=2, content_type="x/y"))
    conn.receive_data(client.encode_publish(1, "", "q", b"1", raw)
                      + client.encode_publish(1, "", "q", b"2", raw))
    first, second = _publishes(handler)
    assert first[6] is second[6] and first[7] is second[7]


def test_headers_are_decoded_per_message_never_shared() -> None:
    conn, handler = opened()
    raw = encode_properties(Properties(headers={"a": 1}))
    conn.receive_data(client.encode_publish(1, "", "q", b"1", raw)
                      + client.encode_publish(1, "", "q", b"2", raw))
    first, second = _publishes(handler)
    assert first[6] == second[6] and first[6].headers is not second[6].headers


def test_message_larger_than_message_max_closes_the_channel_with_406() -> None:
    conn, handler = opened(message_max=100)
    conn.receive_data(client.encode_publish(1, "", "q", b"x" * 101))
    close = last_close(conn)
    assert isinstance(close, c.Channel.Close)
    assert close.reply_text == ("PRECONDITION_FAILED - message size 101 is larger than "
                                "configured max size 100")
    assert (close.reply_code, close.class_id, close.method_id) == (406, 60, 40)
    assert _publishes(handler) == [] and not conn.closed


def test_a_method_between_header_and_body_is_unexpected_frame() -> None:
    conn, handler = opened()
    publish = client.encode_publish(1, "", "q", b"body")
    body_frame = frame(3, 1, b"body")
    head = publish[:-len(body_frame)]
    conn.receive_data(head + client.encode_method(1, c.Basic.Qos(0, 1, False)))
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close)
    assert (close.reply_code, close.reply_text) == (
        505, "UNEXPECTED_FRAME - expected content body, got non content body frame instead")
    assert _publishes(handler) == []


def test_a_method_instead_of_the_content_header_is_unexpected_frame() -> None:
    conn, _ = opened()
    method_only = pframe.marshal(c.Basic.Publish(exchange="", routing_key="q"), 1)
    conn.receive_data(method_only + client.encode_ack(1, 1))
    close = last_close(conn)
    assert close.reply_code == 505
    assert close.reply_text == ("UNEXPECTED_FRAME - expected content header for class 60, "
                                "got non content header frame instead")


def test_a_content_header_for_another_class_is_unexpected_frame() -> None:
    conn, _ = opened()
    method_only = pframe.marshal(c.Basic.Publish(exchange="", routing_key="q"), 1)
    header = frame(2, 1, struct.pack(">HHQ", 50, 0, 0) + b"\x00\x00")
    conn.receive_data(method_only + header)
    assert last_close(conn).reply_text == ("UNEXPECTED_FRAME - expected content header for "
                                           "class 60, got one for class 50 instead")


def test_a_body_frame_without_a_publish_is_unexpected_frame() -> None:
    conn, _ = opened()
    conn.receive_data(frame(3, 1, b"stray"))
    close = last_close(conn)
    assert close.reply_code == 505


def test_body_frames_beyond_the_declared_size_are_a_frame_error() -> None:
    conn, handler = opened()
    method_only = pframe.marshal(c.Basic.Publish(exchange="", routing_key="q"), 1)
    header = frame(2, 1, struct.pack(">HHQ", 60, 0, 3) + b"\x00\x00")
    conn.receive_data(method_only + header + frame(3, 1, b"abcd"))
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (
        501, "FRAME_ERROR - content body frame exceeds remaining content size")
    assert _publishes(handler) == []


def test_immediate_publish_is_not_implemented_as_in_rabbitmq() -> None:
    conn, _ = opened()
    conn.receive_data(pframe.marshal(c.Basic.Publish(exchange="", routing_key="q",
                                                     immediate=True), 1))
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close)
    assert (close.reply_code, close.reply_text) == (540, "NOT_IMPLEMENTED - immediate=true")
    assert (close.class_id, close.method_id) == (60, 40)


def test_malformed_properties_are_a_syntax_error() -> None:
    conn, _ = opened()
    method_only = pframe.marshal(c.Basic.Publish(exchange="", routing_key="q"), 1)
    header = frame(2, 1, struct.pack(">HHQ", 60, 0, 0) + b"\x80\x00\x09abc")  # string overruns
    conn.receive_data(method_only + header)
    close = last_close(conn)
    assert close.reply_code == 502 and (close.class_id, close.method_id) == (60, 40)


def test_frame_larger_than_frame_max_is_a_frame_error_and_drops_the_connection() -> None:
    conn, _ = opened(frame_max=4096)
    conn.receive_data(struct.pack(">BHI", 3, 1, 4097))  # just the head: no need to wait
    close = last_close(conn)
    assert close.reply_code == 501 and conn.closed


def test_rabbitmqs_eight_octet_slack_on_frame_max_is_allowed() -> None:
    conn, handler = opened(frame_max=4096)
    conn.receive_data(client.encode_publish(1, "", "q", b"x" * 4096, frame_max=4096 + 8))
    assert _publishes(handler)[0][5] == b"x" * 4096 and not conn.closed


def test_bad_frame_end_octet_is_a_frame_error_and_drops_the_connection() -> None:
    conn, handler = opened()
    ack = bytearray(client.encode_ack(1, 1))
    ack[-1] = 0x00
    conn.receive_data(bytes(ack) + client.encode_ack(1, 2))
    close = last_close(conn)
    assert close.reply_code == 501 and conn.closed and handler.calls == []


def test_unknown_frame_type_is_a_frame_error() -> None:
    conn, _ = opened()
    conn.receive_data(frame(9, 1, b"??"))
    close = last_close(conn)
    assert close.reply_code == 501 and "unknown_frame" in close.reply_text


def test_heartbeat_on_a_channel_other_than_zero_is_unexpected_frame() -> None:
    conn, _ = opened()
    conn.receive_data(frame(8, 1, b""))
    assert last_close(conn).reply_code == 505


def test_content_frames_on_channel_zero_are_unexpected_frame() -> None:
    conn, _ = opened()
    conn.receive_data(frame(3, 0, b"body"))
    assert last_close(conn).reply_code == 505


def test_incomplete_input_is_bounded_by_frame_max() -> None:
    conn, _ = opened(frame_max=4096)
    head = struct.pack(">BHI", 3, 1, 4096)  # a whole frame of 4104 octets is allowed
    conn.receive_data(head + b"x" * 4000)
    assert not conn.closed and conn.outbox == []
    huge = struct.pack(">BHI", 3, 1, 10**9)
    conn2, _ = opened(frame_max=4096)
    conn2.receive_data(huge[:6])
    conn2.receive_data(huge[6:])
    assert conn2.closed and last_close(conn2).reply_code == 501


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 8, 13, 100])
def test_any_chunking_of_the_input_gives_identical_results(chunk: int) -> None:
    stream = b"".join([
        client.encode_publish(1, "x", "k", b"A" * 5000, frame_max=4096),
        client.encode_ack(1, 1, multiple=True),
        client.encode_publish(1, "", "q", b"", encode_properties(Properties(headers={"h": [1]}))),
        client.encode_method(1, c.Basic.Qos(0, 5, False)),
        client.encode_method(1, c.Channel.Close(200, "ok", 0, 0)),
    ])
    whole, whole_handler = opened()
    whole.receive_data(stream)
    pieces, pieces_handler = opened()
    if chunk == 1:
        feed_bytewise(pieces, stream)
    else:
        for i in range(0, len(stream), chunk):
            pieces.receive_data(stream[i:i + chunk])
    assert b"".join(pieces.outbox) == b"".join(whole.outbox)
    assert comparable(pieces_handler.calls) == comparable(whole_handler.calls)
    assert [call[0] for call in whole_handler.calls] == [
        "on_publish", "on_ack", "on_publish", "on_method", "on_channel_closed"]


# Moved from tests/unit/test_wire_codec.py (pamqp marshals the client side).


def test_a_pamqp_publish_in_one_body_frame_keeps_its_property_bytes() -> None:
    conn, handler = opened()
    props = c.Basic.Properties(content_type="application/json", delivery_mode=2, priority=5,
                               message_id="m1", headers={"k": "v"})
    conn.receive_data(pamqp_publish(1, "amq.direct", "a.key", b"payload", mandatory=True,
                                    props=props))
    [(name, ch, ex, rk, mandatory, body, decoded, raw)] = handler.calls
    assert (name, ch, ex, rk, mandatory, body) == (
        "on_publish", 1, "amq.direct", "a.key", True, b"payload")
    assert decoded.content_type == "application/json" and decoded.delivery_mode == 2
    assert decoded.priority == 5 and decoded.message_id == "m1" and decoded.headers == {"k": "v"}
    assert raw == props.marshal()
    assert conn.outbox == []


def test_zero_length_body_is_published_at_the_content_header() -> None:
    conn, handler = opened()
    conn.receive_data(pamqp_publish(1, "x", "y", b""))
    assert [call[:6] for call in handler.calls] == [("on_publish", 1, "x", "y", False, b"")]
    # and the channel accepts the next publish at once
    conn.receive_data(pamqp_publish(1, "x", "z", b"1"))
    assert handler.calls[-1][:6] == ("on_publish", 1, "x", "z", False, b"1")
    assert not conn.outbox


@pytest.mark.parametrize("channel", [0, 1])
def test_unknown_frame_type_on_any_channel_is_501(channel: int) -> None:
    conn, _ = opened()
    conn.receive_data(struct.pack(">BHI", 9, channel, 2) + b"ab\xce")
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 501


def test_exactly_message_max_is_accepted_after_a_larger_one_closed_its_channel() -> None:
    conn, handler = opened(message_max=100)
    conn.receive_data(pamqp_publish(1, "", "q", b"x" * 101))
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    assert close.reply_text.startswith("PRECONDITION_FAILED") and "100" in close.reply_text
    assert (close.class_id, close.method_id) == (60, 40)
    assert handler.calls == [] and not conn.closed
    # exactly message_max is fine on another channel
    conn.receive_data(pamqp_frame(2, c.Channel.Open()) + pamqp_publish(2, "", "q", b"y" * 100))
    assert handler.calls[-1][:6] == ("on_publish", 2, "", "q", False, b"y" * 100)


def test_frame_larger_than_frame_max_is_a_connection_level_frame_error() -> None:
    conn, _ = opened(frame_max=4096)
    conn.receive_data(struct.pack(">BHI", 1, 1, 4096 + 100))  # only the head: enough to refuse
    ch, close = only_close(conn)
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 501
    assert close.reply_text.startswith("FRAME_ERROR")
    assert conn.closed


def test_a_stray_body_frame_reaches_no_handler() -> None:
    conn, handler = opened()
    conn.receive_data(pamqp_frame(1, ContentBody(b"stray")))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 505
    assert handler.calls == []


def test_an_immediate_publish_reaches_no_handler() -> None:
    conn, handler = opened()
    conn.receive_data(pamqp_frame(1, c.Basic.Publish(exchange="", routing_key="q", immediate=True)))
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 540
    assert "immediate" in close.reply_text and (close.class_id, close.method_id) == (60, 40)
    assert handler.calls == []
