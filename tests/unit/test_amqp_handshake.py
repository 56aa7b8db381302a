"""The connection handshake, driven by a client wired straight to the server connection."""

from __future__ import annotations

import struct

import pytest
from pamqp import commands as c

from ferrymq import limits
from ferrymq.errors import AccessRefused, NotAllowed
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER
from ferrymq.protocols.amqp.server_properties import CAPABILITIES, server_properties
from ferrymq.protocols.amqp.tables import encode_table
from tests.support.amqp import (
    comparable,
    drain,
    drain_exact,
    feed_bytewise,
    handshake_bytes,
    last_close,
    new_server,
    only_close,
    opened,
    pamqp_frame,
    pamqp_handshake,
    pamqp_publish,
)


def _start_ok(mechanism: str, response: bytes | str, caps: dict | None = None) -> bytes:
    props = {"capabilities": caps or {"authentication_failure_close": True}}
    return client.encode_method(0, c.Connection.StartOk(props, mechanism, response, "en_US"))


def test_protocol_header_gets_connection_start_with_our_properties() -> None:
    conn, _ = new_server()
    conn.receive_data(PROTOCOL_HEADER)
    [(channel, start)] = drain(conn)
    assert channel == 0 and isinstance(start, c.Connection.Start)
    assert (start.version_major, start.version_minor) == (0, 9)
    assert start.mechanisms == "PLAIN AMQPLAIN" and start.locales == "en_US"
    caps = start.server_properties["capabilities"]
    assert set(caps) == set(CAPABILITIES) and all(caps.values())
    assert start.server_properties["product"] == "FerryMQ"


def test_server_properties_carry_the_nine_rabbitmq_capabilities_and_who_we_are() -> None:
    props = server_properties(product="P", version="9.9", platform="X", cluster_name="c")
    assert len(props["capabilities"]) == 9
    assert {k: props[k] for k in ("product", "version", "platform", "cluster_name")} == {
        "product": "P", "version": "9.9", "platform": "X", "cluster_name": "c"}
    assert props["copyright"] and props["information"]


@pytest.mark.parametrize("garbage", [b"HTTP/1.1", b"AMQP\x00\x00\x09\x00", b"AMQP\x01\x01\x00\x0a"])
def test_bad_protocol_header_is_answered_with_ours_and_the_connection_ends(garbage: bytes) -> None:
    conn, _ = new_server()
    conn.receive_data(garbage)
    assert conn.closed and conn.outbox == [PROTOCOL_HEADER]


def test_a_wrong_first_byte_is_refused_without_waiting_for_eight() -> None:
    conn, _ = new_server()
    conn.receive_data(b"G")
    assert conn.closed and conn.outbox == [PROTOCOL_HEADER]


def test_full_handshake_negotiates_and_opens_the_vhost() -> None:
    conn, handler = new_server()
    conn.receive_data(PROTOCOL_HEADER)
    drain(conn)
    conn.receive_data(_start_ok("PLAIN", "\0alice\0secret"))
    [(_, tune)] = drain(conn)
    assert isinstance(tune, c.Connection.Tune)
    assert (tune.channel_max, tune.frame_max, tune.heartbeat) == (
        limits.CHANNEL_MAX, limits.FRAME_MAX_BYTES, limits.HEARTBEAT_S)
    conn.receive_data(client.encode_method(0, c.Connection.TuneOk(100, 8192, 10)))
    assert drain(conn) == []
    conn.receive_data(client.encode_method(0, c.Connection.Open("/prod")))
    [(_, open_ok)] = drain(conn)
    assert isinstance(open_ok, c.Connection.OpenOk)
    assert (conn.channel_max, conn.frame_max, conn.heartbeat) == (100, 8192, 10)
    assert (conn.username, conn.vhost) == ("alice", "/prod")
    assert conn.client_properties["capabilities"] == {"authentication_failure_close": True}
    assert handler.calls == [("authenticate", "alice", "secret", "PLAIN"), ("open_vhost", "/prod")]
    assert not conn.closed


def test_tune_ok_zero_means_the_server_values() -> None:
    conn, _ = new_server(frame_max=65536, channel_max=64)
    conn.receive_data(PROTOCOL_HEADER + _start_ok("PLAIN", "\0u\0p")
                      + client.encode_method(0, c.Connection.TuneOk(0, 0, 0)))
    assert (conn.frame_max, conn.channel_max, conn.heartbeat) == (65536, 64, 0)
    assert not conn.closed


def test_amqplain_response_is_a_table_without_its_length_prefix() -> None:
    conn, handler = new_server()
    response = encode_table({"LOGIN": "bob", "PASSWORD": "pw"})[4:]
    conn.receive_data(PROTOCOL_HEADER + _start_ok("AMQPLAIN", response))
    assert handler.calls == [("authenticate", "bob", "pw", "AMQPLAIN")]
    assert isinstance(drain(conn)[-1][1], c.Connection.Tune)


@pytest.mark.parametrize("mechanism, response", [
    ("PLAIN", "\0guest\0wrong"),  # the handler refuses it
    ("PLAIN", "no-nul-separators"),  # malformed
    ("AMQPLAIN", encode_table({"LOGIN": "x"})[4:]),  # PASSWORD missing
])
def test_failed_login_closes_with_rabbitmqs_access_refused_text(mechanism: str,
                                                                response: bytes | str) -> None:
    conn, handler = new_server()
    handler.fail["authenticate"] = AccessRefused("bad password")
    conn.receive_data(PROTOCOL_HEADER + _start_ok(mechanism, response))
    close = last_close(conn)
    assert close.reply_code == 403
    assert close.reply_text == (f"ACCESS_REFUSED - Login was refused using authentication "
                                f"mechanism {mechanism}. For details see the broker logfile.")
    assert (close.class_id, close.method_id) == (0, 0)
    assert conn.closed  # no close-ok awaited from a client that never logged in


def test_unknown_mechanism_is_command_invalid_as_in_rabbitmq() -> None:
    conn, handler = new_server()
    conn.receive_data(PROTOCOL_HEADER + _start_ok("EXTERNAL", ""))
    close = last_close(conn)
    assert close.reply_code == 503
    assert close.reply_text == "COMMAND_INVALID - unknown authentication mechanism 'EXTERNAL'"
    assert conn.closed and handler.calls == []


@pytest.mark.parametrize("tune_ok, text", [
    (c.Connection.TuneOk(2047, 1024, 0),
     "NOT_ALLOWED - negotiated frame_max = 1024 is lower than the minimum allowed value (4096)"),
    (c.Connection.TuneOk(2047, 262144, 0),
     "NOT_ALLOWED - negotiated frame_max = 262144 is higher than the maximum allowed value "
     "(131072)"),
    (c.Connection.TuneOk(4000, 131072, 0),
     "NOT_ALLOWED - negotiated channel_max = 4000 is higher than the maximum allowed value "
     "(2047)"),
])
def test_tune_ok_outside_the_limits_is_not_allowed(tune_ok: c.Connection.TuneOk, text: str) -> None:
    conn, _ = new_server()
    conn.receive_data(PROTOCOL_HEADER + _start_ok("PLAIN", "\0u\0p") + client.encode_method(0, tune_ok))
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (530, text)
    assert (close.class_id, close.method_id) == (10, 30)
    assert conn.closed


def test_refused_vhost_closes_with_the_handlers_530() -> None:
    conn, handler = new_server()
    handler.fail["open_vhost"] = NotAllowed("vhost /nope not found")
    conn.receive_data(handshake_bytes(channels=()))
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (530, "NOT_ALLOWED - vhost /nope not found")
    assert (close.class_id, close.method_id) == (10, 40)
    assert conn.closed and conn.vhost is None


def test_a_method_out_of_handshake_order_is_a_channel_error() -> None:
    conn, _ = new_server()
    conn.receive_data(PROTOCOL_HEADER + client.encode_method(0, c.Connection.Open("/")))
    close = last_close(conn)
    assert close.reply_code == 504
    assert close.reply_text == "CHANNEL_ERROR - unexpected method in connection state starting"
    assert conn.closed


def test_a_channel_frame_during_the_handshake_is_unexpected() -> None:
    conn, _ = new_server()
    conn.receive_data(PROTOCOL_HEADER + client.encode_method(1, c.Channel.Open()))
    assert last_close(conn).reply_code == 505 and conn.closed


def test_client_close_is_answered_with_close_ok_and_ends_the_connection() -> None:
    conn, handler = opened()
    conn.receive_data(client.encode_method(0, c.Connection.Close(200, "bye", 0, 0)))
    assert [type(f) for _, f in drain(conn)] == [c.Connection.CloseOk]
    assert conn.closed and handler.names() == ["on_connection_closed"]
    conn.receive_data(client.encode_method(1, c.Basic.Qos(0, 10, False)))  # after the end
    assert conn.outbox == [] and handler.names() == ["on_connection_closed"]


def test_server_close_waits_for_close_ok_and_ignores_other_frames_meanwhile() -> None:
    conn, handler = opened()
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    close = last_close(conn)
    assert (close.reply_code, close.reply_text) == (320, "CONNECTION_FORCED - shutdown")
    assert not conn.closed
    conn.receive_data(client.encode_publish(1, "", "q", b"ignored")
                      + client.encode_method(1, c.Basic.Qos(0, 1, False)))
    assert conn.outbox == [] and handler.calls == [] and not conn.closed
    conn.receive_data(client.encode_method(0, c.Connection.CloseOk()))
    assert conn.closed


def test_crossing_closes_are_answered_and_end_the_connection() -> None:
    conn, _ = opened()
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    drain(conn)
    conn.receive_data(client.encode_method(0, c.Connection.Close(200, "bye", 0, 0)))
    assert [type(f) for _, f in drain(conn)] == [c.Connection.CloseOk]
    assert conn.closed


def test_update_secret_is_acknowledged_without_a_new_login_as_rabbitmq_does_for_internal_users() -> None:
    conn, handler = opened()
    handler.fail["authenticate"] = AccessRefused("no")  # even a secret the backend would refuse
    for secret in ("new", "bad"):
        conn.receive_data(client.encode_method(0, c.Connection.UpdateSecret(secret, "rotation")))
        assert [type(f) for _, f in drain(conn)] == [c.Connection.UpdateSecretOk]
    assert handler.calls == [] and not conn.closed


def test_handshake_fed_one_byte_at_a_time_matches_one_chunk() -> None:
    stream = handshake_bytes(channels=(1, 2)) + client.encode_publish(1, "x", "k", b"body" * 50)
    whole, whole_handler = new_server()
    whole.receive_data(stream)
    bytewise, bytewise_handler = new_server()
    feed_bytewise(bytewise, stream)
    assert b"".join(bytewise.outbox) == b"".join(whole.outbox)
    assert comparable(bytewise_handler.calls) == comparable(whole_handler.calls)
    assert [call[0] for call in whole_handler.calls][-1] == "on_publish"



# Moved from tests/unit/test_wire_codec.py (pamqp marshals the client side).


def test_a_whole_handshake_in_one_read_gets_start_tune_open_ok_and_channel_open_ok() -> None:
    conn, handler = new_server()
    conn.receive_data(pamqp_handshake())
    frames = drain_exact(conn)
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


def test_server_close_keeps_a_half_received_frame_in_sync_for_the_close_ok() -> None:
    """A server-initiated connection.close while a client frame is half in: the rest of that
    frame must still be skipped as a frame, so the client's close-ok is recognised."""
    conn, handler = opened()
    data = pamqp_publish(1, "", "q", b"z" * 1000)
    conn.receive_data(data[:-500])
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    _, close = only_close(conn)
    assert isinstance(close, c.Connection.Close) and close.reply_code == 320
    assert not conn.closed
    conn.receive_data(data[-500:] + pamqp_frame(0, c.Connection.CloseOk()))
    assert conn.closed and conn.outbox == [] and handler.calls == []


def test_a_framing_error_while_closing_drops_the_connection() -> None:
    conn, _ = opened()
    conn.close_connection(320, "CONNECTION_FORCED - shutdown")
    drain(conn)
    conn.receive_data(struct.pack(">BHI", 1, 1, 2**31) + b"\x00")  # no close-ok can follow this
    assert conn.closed and conn.outbox == []


def test_a_wrong_password_gets_start_then_only_the_403() -> None:
    conn, handler = new_server()
    handler.fail["authenticate"] = AccessRefused("bad password")
    conn.receive_data(pamqp_handshake(password="wrong"))
    frames = drain_exact(conn)
    assert isinstance(frames[0][1], c.Connection.Start)
    [(ch, close)] = frames[1:]
    assert ch == 0 and isinstance(close, c.Connection.Close) and close.reply_code == 403
    assert close.reply_text.startswith("ACCESS_REFUSED - Login was refused")
    assert conn.closed
    assert [call[0] for call in handler.calls] == ["authenticate"]
