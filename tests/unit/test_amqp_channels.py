"""The channel state machine, method dispatch to the handler, and how errors become closes."""

from __future__ import annotations

import warnings

import pytest
from pamqp import commands as c
from pamqp import header as pheader
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ferrymq.core.message import Message
from ferrymq.errors import ChannelStateError, NotFound, PreconditionFailed
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.frames import frame
from ferrymq.protocols.amqp.methods import encode_method
from tests.support.amqp import (
    drain,
    drain_exact,
    last_close,
    only_close,
    opened,
    pamqp_frame,
    pamqp_publish,
    unvalidated,
)

with warnings.catch_warnings():  # pamqp warns that basic.recover-async is deprecated
    warnings.simplefilter("ignore", DeprecationWarning)
    RECOVER_ASYNC = c.Basic.RecoverAsync(True)


def _send(conn, channel: int, method) -> None:  # type: ignore[no-untyped-def]
    conn.receive_data(client.encode_method(channel, method))


def test_channel_open_calls_the_handler_and_replies_open_ok() -> None:
    conn, handler = opened(channels=())
    _send(conn, 7, c.Channel.Open())
    assert [(ch, type(f)) for ch, f in drain(conn)] == [(7, c.Channel.OpenOk)]
    assert handler.calls == [("on_channel_open", 7)]


def test_second_channel_open_is_a_connection_level_channel_error() -> None:
    conn, _ = opened()
    _send(conn, 1, c.Channel.Open())
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close)
    assert (close.reply_code, close.reply_text) == (504, "CHANNEL_ERROR - second 'channel.open' seen")
    assert (close.class_id, close.method_id) == (20, 10)


def test_a_method_on_an_unopened_channel_expects_channel_open() -> None:
    conn, handler = opened()
    _send(conn, 2, c.Basic.Qos(0, 10, False))
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close)
    assert (close.reply_code, close.reply_text) == (504, "CHANNEL_ERROR - expected 'channel.open'")
    assert (close.class_id, close.method_id) == (60, 10)
    assert handler.calls == []


def test_a_content_frame_on_an_unopened_channel_is_unexpected() -> None:
    conn, _ = opened()
    conn.receive_data(client.encode_publish(3, "", "q", b"x")[-9:])  # just the body frame
    close = last_close(conn)
    assert close.reply_code == 505
    assert close.reply_text == "UNEXPECTED_FRAME - expected method frame, got non method frame instead"


def test_channel_max_counts_open_channels_as_rabbitmq_does() -> None:
    """RabbitMQ 3.10 lets any channel number open while fewer than channel_max are open; the one past
    the count gets connection.close 530 naming no method (checked against RabbitMQ 3.10)."""
    conn, handler = opened(channels=(), channel_max=2)
    _send(conn, 11, c.Channel.Open())
    _send(conn, 1, c.Channel.Open())
    assert handler.calls == [("on_channel_open", 11), ("on_channel_open", 1)]
    _send(conn, 2, c.Channel.Open())
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close) and (close.reply_code, close.reply_text) == (
        530, "NOT_ALLOWED - number of channels opened (2) has reached the negotiated channel_max (2)")
    assert (close.class_id, close.method_id) == (0, 0)


def test_client_channel_close_tells_the_handler_then_replies_close_ok() -> None:
    conn, handler = opened()
    _send(conn, 1, c.Channel.Close(200, "bye", 0, 0))
    assert [(ch, type(f)) for ch, f in drain(conn)] == [(1, c.Channel.CloseOk)]
    assert handler.calls == [("on_channel_closed", 1)]
    _send(conn, 1, c.Basic.Qos(0, 1, False))  # the channel is gone now
    assert last_close(conn).reply_code == 504


def test_channel_number_can_be_reused_after_close() -> None:
    conn, handler = opened()
    _send(conn, 1, c.Channel.Close(200, "bye", 0, 0))
    _send(conn, 1, c.Channel.Open())
    assert [type(f) for _, f in drain(conn)] == [c.Channel.CloseOk, c.Channel.OpenOk]
    assert handler.names() == ["on_channel_closed", "on_channel_open"]


def test_server_channel_close_ignores_the_channel_until_close_ok() -> None:
    conn, handler = opened(channels=(1, 2))
    conn.close_channel(1, 404, "NOT_FOUND - no queue 'q' in vhost '/'", 50, 10)
    [(ch, close)] = drain(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close)
    assert (close.reply_code, close.class_id, close.method_id) == (404, 50, 10)
    conn.receive_data(client.encode_publish(1, "", "q", b"dropped")
                      + client.encode_method(1, c.Basic.Qos(0, 1, False))
                      + client.encode_ack(1, 5)
                      + client.encode_method(2, c.Basic.Qos(0, 1, False)))
    assert [call[:2] for call in handler.calls] == [("on_method", 2)]
    assert drain(conn) == []
    _send(conn, 1, c.Channel.CloseOk())
    assert handler.calls[-1] == ("on_channel_closed", 1)
    _send(conn, 1, c.Channel.Open())
    assert [type(f) for _, f in drain(conn)] == [c.Channel.OpenOk]


def test_client_close_crossing_our_channel_close_is_answered() -> None:
    conn, handler = opened()
    conn.close_channel(1, 406, "PRECONDITION_FAILED - x")
    drain(conn)
    _send(conn, 1, c.Channel.Close(200, "bye", 0, 0))
    assert [type(f) for _, f in drain(conn)] == [c.Channel.CloseOk]
    assert handler.calls == [("on_channel_closed", 1)]


def test_channel_flow_reaches_the_handler_and_is_echoed() -> None:
    conn, handler = opened()
    _send(conn, 1, c.Channel.Flow(False))
    [(_, flow_ok)] = drain(conn)
    assert isinstance(flow_ok, c.Channel.FlowOk) and flow_ok.active is False
    assert handler.calls == [("on_flow", 1, False)]


@pytest.mark.parametrize("method", [
    c.Exchange.Declare(exchange="logs", exchange_type="topic", durable=True,
                       arguments={"alternate-exchange": "ae"}),
    c.Exchange.Delete(exchange="logs"),
    c.Exchange.Bind(destination="d", source="s", routing_key="k"),
    c.Exchange.Unbind(destination="d", source="s", routing_key="k"),
    unvalidated(c.Queue.Declare(arguments={"x-max-priority": 10}), queue="café ü?"),
    c.Queue.Bind(queue="q", exchange="x", routing_key="k"),
    c.Queue.Purge(queue="q"), c.Queue.Delete(queue="q"),
    c.Queue.Unbind(queue="q", exchange="x", routing_key="k"),
    c.Basic.Qos(0, 100, False), c.Basic.Consume(queue="q", consumer_tag="t1", no_ack=True),
    c.Basic.Cancel("t1"), c.Basic.Get(queue="q"), c.Basic.Recover(True),
    RECOVER_ASYNC, c.Confirm.Select(), c.Tx.Select(), c.Tx.Commit(), c.Tx.Rollback(),
])
def test_broker_methods_reach_on_method_as_pamqp_objects(method) -> None:  # type: ignore[no-untyped-def]
    conn, handler = opened()
    _send(conn, 1, method)
    [(name, channel, got)] = handler.calls
    assert (name, channel, type(got)) == ("on_method", 1, type(method))
    assert dict(got) == dict(method)
    assert drain(conn) == []  # the handler replies, not the codec


@pytest.mark.parametrize("method", [c.Basic.Deliver("t", 1, False, "", "q"), c.Channel.OpenOk(),
                                    c.Queue.DeclareOk("q", 0, 0), c.Channel.CloseOk()])
def test_server_to_client_methods_from_a_client_are_command_invalid(method) -> None:  # type: ignore[no-untyped-def]
    conn, handler = opened()
    _send(conn, 1, method)
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (503, "COMMAND_INVALID - unimplemented method")
    assert handler.calls == []


def test_unknown_method_is_not_implemented() -> None:
    conn, _ = opened()
    conn.receive_data(b"\x01\x00\x01\x00\x00\x00\x04\x00\x63\x00\x01\xce")  # class 99 method 1
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (540, "NOT_IMPLEMENTED - unknown method 99.1")


@pytest.mark.parametrize("mangle", [lambda p: p + b"\x00\x00", lambda p: p[:-3]],
                         ids=["trailing octets", "truncated"])
def test_malformed_method_arguments_are_a_frame_error(mangle) -> None:  # type: ignore[no-untyped-def]
    conn, handler = opened()
    conn.receive_data(frame(1, 1, mangle(encode_method(c.Basic.Qos(0, 10, False)))))
    close = last_close(conn)
    assert close.reply_code == 501 and close.reply_text.startswith("FRAME_ERROR - cannot decode")
    assert (close.class_id, close.method_id) == (60, 10) and handler.calls == []


def test_invalid_utf8_in_a_method_short_string_is_a_frame_error() -> None:
    conn, _ = opened()
    payload = encode_method(c.Queue.Purge(queue="ok")).replace(b"\x02ok", b"\x02\xff\xfe")
    conn.receive_data(frame(1, 1, payload))
    assert last_close(conn).reply_code == 501


def test_handler_channel_error_closes_just_that_channel_with_the_methods_ids() -> None:
    conn, handler = opened(channels=(1, 2))
    handler.fail["on_method"] = NotFound("no queue 'q' in vhost '/'")
    _send(conn, 1, c.Queue.Declare(queue="q", passive=True))
    close = last_close(conn)
    assert isinstance(close, c.Channel.Close)
    assert (close.reply_code, close.reply_text) == (404, "NOT_FOUND - no queue 'q' in vhost '/'")
    assert (close.class_id, close.method_id) == (50, 10)
    assert not conn.closed


def test_handler_connection_error_closes_the_connection() -> None:
    conn, handler = opened()
    handler.fail["on_ack"] = ChannelStateError("bad state")
    conn.receive_data(client.encode_ack(1, 3))
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close)
    assert (close.reply_code, close.class_id, close.method_id) == (504, 60, 80)
    assert not conn.closed  # awaiting the client's close-ok


def test_any_other_handler_exception_is_an_internal_error_and_nothing_escapes() -> None:
    conn, handler = opened()
    handler.fail["on_method"] = KeyError("bug")
    _send(conn, 1, c.Basic.Qos(0, 1, False))
    close = last_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 541


def test_acks_nacks_and_rejects_reach_the_handler_as_plain_values() -> None:
    conn, handler = opened()
    conn.receive_data(client.encode_ack(1, 5) + client.encode_ack(1, 9, multiple=True)
                      + client.encode_method(1, c.Basic.Nack(7, multiple=True, requeue=False))
                      + client.encode_method(1, c.Basic.Nack(8))
                      + client.encode_method(1, c.Basic.Reject(4, requeue=False)))
    assert handler.calls == [
        ("on_ack", 1, 5, False), ("on_ack", 1, 9, True), ("on_nack", 1, 7, True, False),
        ("on_nack", 1, 8, False, True), ("on_reject", 1, 4, False),
    ]


def test_an_ack_error_from_the_handler_closes_the_channel_with_basic_ack_ids() -> None:
    conn, handler = opened()
    handler.fail["on_ack"] = PreconditionFailed("unknown delivery tag 3")
    conn.receive_data(client.encode_ack(1, 3) + client.encode_ack(1, 4))
    close = last_close(conn)
    assert isinstance(close, c.Channel.Close)
    assert (close.reply_code, close.class_id, close.method_id) == (406, 60, 80)
    assert [call[0] for call in handler.calls] == ["on_ack"]  # the second ack is ignored


def test_close_texts_longer_than_a_short_string_are_cut_to_255_bytes() -> None:
    conn, _ = opened()
    conn.close_channel(1, 406, "PRECONDITION_FAILED - " + "é" * 300)
    close = last_close(conn)
    assert len(close.reply_text.encode()) <= 255 and close.reply_text.startswith("PRECONDITION")


def test_heartbeat_frames_are_accepted_and_sent() -> None:
    conn, handler = opened()
    conn.receive_data(b"\x08\x00\x00\x00\x00\x00\x00\xce")
    assert conn.outbox == [] and handler.calls == [] and not conn.closed
    conn.send_heartbeat()
    assert conn.outbox == [b"\x08\x00\x00\x00\x00\x00\x00\xce"]


def test_nothing_is_sent_on_a_closing_or_unopened_channel() -> None:
    conn, _ = opened(channels=(1, 2))
    message = Message("", "q", b"x")
    conn.close_channel(1, 406, "PRECONDITION_FAILED - x")
    drain(conn)
    conn.send_deliver(1, "t", 1, False, "", "q", message)
    conn.send_confirm(1, 1, False, True)
    conn.send_get_ok(1, 1, False, "", "q", 0, message)
    conn.send_return(1, 312, "NO_ROUTE", "", "q", message)
    conn.send_method(1, c.Basic.QosOk())
    conn.send_deliver(9, "t", 1, False, "", "q", message)  # never opened
    assert conn.outbox == []
    conn.send_deliver(2, "t", 1, False, "", "q", message)
    conn.send_method(0, c.Connection.Blocked("low on memory"))
    assert [(ch, type(f)) for ch, f in drain(conn)] == [
        (2, c.Basic.Deliver), (2, ContentHeader), (2, ContentBody), (0, c.Connection.Blocked)]


def test_nothing_but_heartbeats_is_sent_once_the_connection_is_closing() -> None:
    conn, _ = opened()
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    drain(conn)
    conn.send_deliver(1, "t", 1, False, "", "q", Message("", "q", b"x"))
    conn.send_method(0, c.Connection.Blocked("x"))
    conn.send_heartbeat()
    assert conn.outbox == [b"\x08\x00\x00\x00\x00\x00\x00\xce"]


def test_input_that_is_not_bytes_is_copied_once() -> None:
    conn, handler = opened()
    conn.receive_data(memoryview(client.encode_publish(1, "", "q", b"abc")))  # type: ignore[arg-type]
    assert type(handler.calls[0][5]) is bytes


# Moved from tests/unit/test_wire_codec.py (pamqp marshals the client side).


def test_handler_precondition_failed_on_ack_closes_the_channel_with_its_text() -> None:
    conn, handler = opened()
    handler.fail["on_ack"] = PreconditionFailed("unknown delivery tag 5")
    conn.receive_data(pamqp_frame(1, c.Basic.Ack(delivery_tag=5)))
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    assert close.reply_text == "PRECONDITION_FAILED - unknown delivery tag 5"
    assert (close.class_id, close.method_id) == (60, 80)
    assert not conn.closed


_TRIGGERS = {
    "on_publish": pamqp_publish(1, "", "q", b"abc"),
    "on_ack": pamqp_frame(1, c.Basic.Ack(delivery_tag=1)),
    "on_method": pamqp_frame(1, c.Queue.Declare(queue="q")),
    "on_channel_open": pamqp_frame(3, c.Channel.Open()),
    "on_flow": pamqp_frame(1, c.Channel.Flow(active=False)),
}


@pytest.mark.parametrize("hook", sorted(_TRIGGERS))
def test_handler_runtime_error_is_541_and_never_escapes(hook: str) -> None:
    conn, handler = opened()
    handler.fail[hook] = RuntimeError("boom")
    conn.receive_data(_TRIGGERS[hook])
    ch, close = only_close(conn)
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 541
    assert close.reply_text.startswith("INTERNAL_ERROR") and "boom" in close.reply_text
    assert not conn.closed
    # closing: further input is ignored until close-ok
    conn.receive_data(b"".join(_TRIGGERS.values()))
    assert conn.outbox == [] and [call[0] for call in handler.calls] == [hook]
    conn.receive_data(pamqp_frame(0, c.Connection.CloseOk()))
    assert conn.closed


def test_content_frames_on_a_server_closed_channel_are_ignored_until_close_ok() -> None:
    conn, handler = opened()
    conn.receive_data(pamqp_frame(1, c.Basic.Publish(exchange="", routing_key="q")))  # mid-publish
    conn.close_channel(1, 406, "PRECONDITION_FAILED - stop", 60, 40)
    ch, close = only_close(conn)
    assert ch == 1 and isinstance(close, c.Channel.Close) and close.reply_code == 406
    conn.receive_data(b"".join((
        pamqp_frame(1, pheader.ContentHeader(0, 3, c.Basic.Properties())),
        pamqp_frame(1, ContentBody(b"abc")),
        pamqp_publish(1, "", "q", b"more"),
        pamqp_frame(1, c.Basic.Ack(delivery_tag=1)),
        pamqp_frame(1, c.Queue.Declare(queue="q")),
        pamqp_frame(1, c.Channel.Open()),
    )))
    assert handler.calls == [] and conn.outbox == [] and not conn.closed
    conn.receive_data(pamqp_frame(1, c.Channel.CloseOk()))
    assert handler.calls == [("on_channel_closed", 1)] and conn.outbox == []
    conn.receive_data(pamqp_frame(1, c.Channel.Open()) + pamqp_publish(1, "", "q", b"again"))
    assert [type(f) for _, f in drain_exact(conn)] == [c.Channel.OpenOk]
    assert handler.calls[-1][:6] == ("on_publish", 1, "", "q", False, b"again")
