"""The one fuzz suite for the AMQP server codec (the live listener is fuzzed in
tests/integration/test_listener_fuzz.py).

The rules, h11's, each checked on every example:

1. ``receive_data`` never raises: the codec turns every bad input into its own close;
2. only the protocol's own errors escape: every close carries an AMQP reply code, and never 541
   INTERNAL_ERROR, which is what the codec sends when a bug of its own (or a handler's) blew up;
3. what the server writes is whole frames: a known type, the size honoured, 0xCE at the end,
   method frames that pamqp decodes;
4. how the input is cut into chunks never changes the calls or the output;
5. valid traffic round-trips: what a client encodes reaches the handler unchanged, what the
   server encodes the client reads back unchanged.

The last tests plant a broken decoder and expect these checks to catch it: a suite that cannot
fail proves nothing. FERRYMQ_FUZZ_EXAMPLES raises the bound (e.g. 20000 for a long run).
"""

from __future__ import annotations

import itertools
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.errors import NotFound, PreconditionFailed
from ferrymq.protocols.amqp import client, hotpath
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER, frame
from ferrymq.protocols.amqp.properties import decode_properties, encode_properties
from ferrymq.protocols.amqp.server_properties import server_properties
from tests.support.amqp import (
    PAMQP_VALID,
    VALID,
    Recorder,
    comparable,
    handshake_bytes,
    new_server,
    opened,
    pamqp_handshake,
)

EXAMPLES = int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "200"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FRAME_MAX = 4096
METHOD_IDS = sorted(c.INDEX_MAPPING)
# Every reply code AMQP 0-9-1 defines, but 541: the codec's own failure is never a valid answer.
PROTOCOL_CODES = frozenset((200, 311, 312, 313, 320, 402, 403, 404, 405, 406, 501, 502, 503, 504,
                            505, 506, 530, 540))


# --- the checks -----------------------------------------------------------------------------


def check_output(out: bytes) -> None:
    """Rules 2 and 3 over everything the server wrote."""
    if out.endswith(PROTOCOL_HEADER):  # a refused protocol header: ours, then nothing
        out = out[:-len(PROTOCOL_HEADER)]
    pos = 0
    while pos < len(out):
        assert len(out) - pos >= 8, "a truncated frame in the output"
        ftype, _, size = struct.unpack_from(">BHI", out, pos)
        assert ftype in (1, 2, 3, 8), ftype
        end = pos + 7 + size
        assert end < len(out), "frame size runs past the output"
        assert out[end] == 0xCE, "frame does not end with 0xCE"
        if ftype == 1:
            used, _, value = pframe.unmarshal(out[pos:end + 1])
            assert used == size + 8 and value is not None
            if isinstance(value, c.Connection.Close | c.Channel.Close):
                assert value.reply_code != 541, value.reply_text
                assert value.reply_code in PROTOCOL_CODES, (value.reply_code, value.reply_text)
        pos = end + 1
    assert pos == len(out)


def outbox_bytes(conn: AMQPServerConnection) -> bytes:
    return b"".join(bytes(part) for part in conn.outbox)


class FailingRecorder(Recorder):
    """Raises protocol errors the way a broker does, deterministically from the arguments."""

    def on_ack(self, channel: int, delivery_tag: int, multiple: bool) -> None:
        super().on_ack(channel, delivery_tag, multiple)
        if delivery_tag % 3 == 0:
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")

    def on_method(self, channel: int, method: Any) -> None:
        super().on_method(channel, method)
        if isinstance(method, c.Queue.Declare) and method.passive:
            raise NotFound(f"no queue '{method.queue}' in vhost '/'")


class EchoHandler(Recorder):
    """Answers like a broker would, so the fuzzed input also reaches the output encoders."""

    conn: AMQPServerConnection

    def on_publish(self, channel: int, exchange: str, routing_key: str, mandatory: bool,
                   message: Message) -> None:
        super().on_publish(channel, exchange, routing_key, mandatory, message)
        self.conn.send_deliver(channel, "ctag", 1, False, exchange, routing_key, message)
        self.conn.send_confirm(channel, 1, False, True)
        if mandatory:
            self.conn.send_return(channel, 312, "NO_ROUTE", exchange, routing_key, message)

    def on_method(self, channel: int, method: Any) -> None:
        super().on_method(channel, method)
        if isinstance(method, c.Queue.Declare):
            self.conn.send_method(channel, c.Queue.DeclareOk(method.queue or "amq.gen", 0, 0))
        elif isinstance(method, c.Basic.Get):
            self.conn.send_get_ok(channel, 1, False, "", "q", 0, Message("", "q", b"x" * 5000))


def _run(stream: bytes, cuts: list[int]) -> tuple[bytes, list[tuple[Any, ...]], bool]:
    """Feed ``stream`` cut at ``cuts`` to a fresh connection (rule 1: nothing may raise)."""
    handler = FailingRecorder()
    conn = AMQPServerConnection(handler, server_properties())
    pos = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        conn.receive_data(stream[pos:cut])
        pos = max(pos, cut)
    return outbox_bytes(conn), comparable(handler.calls), conn.closed


def _echoing() -> AMQPServerConnection:
    """A connection past a pamqp-marshalled handshake (frame_max 4096) that answers publishes."""
    handler = EchoHandler()
    conn = AMQPServerConnection(handler, server_properties(), message_max=64 * 1024)
    handler.conn = conn
    conn.receive_data(pamqp_handshake(FRAME_MAX))
    assert not conn.closed
    conn.outbox.clear()
    return conn


def _feed_checked(conn: AMQPServerConnection, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` split at ``cuts`` (taken modulo its length), checking the output each time."""
    bounds = [0, *sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]
    for start, stop in itertools.pairwise(bounds):
        conn.receive_data(data[start:stop])
        check_output(outbox_bytes(conn))


# --- rules 1 to 4: garbage of every shape -----------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["valid", "method", "envelope", "mutated", "noise"]))
    if kind == "valid":
        return draw(st.sampled_from(VALID))
    channel = draw(st.sampled_from([0, 1, 2, 3, 9, 65535]))
    if kind == "method":
        cm = draw(st.sampled_from(METHOD_IDS))
        return frame(1, channel, struct.pack(">I", cm) + draw(st.binary(max_size=40)))
    if kind == "envelope":
        ftype = draw(st.sampled_from([1, 2, 3, 8, 0, 4, 206]))
        return frame(ftype, channel, draw(st.binary(max_size=40)))
    if kind == "mutated":
        data = bytearray(draw(st.sampled_from(VALID)))
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(data) - 1))
            data[at] = draw(st.integers(0, 255))
        return bytes(data)
    return draw(st.binary(min_size=1, max_size=30))


@fuzz
@given(parts=st.lists(frames(), min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_frame_shaped_garbage_never_escapes_and_chunking_does_not_matter(
        parts: list[bytes], cuts: list[int]) -> None:
    stream = handshake_bytes(channels=(1, 2)) + b"".join(parts)
    whole = _run(stream, [])
    check_output(whole[0])
    assert _run(stream, [len(handshake_bytes(channels=(1, 2))) + cut for cut in cuts]) == whole


@fuzz
@given(noise=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_noise_at_any_point_of_the_handshake_never_escapes(noise: bytes, cuts: list[int]) -> None:
    handshake = handshake_bytes(channels=(1,))
    for at in (0, 8, 30, len(handshake)):
        stream = handshake[:at] + noise
        whole = _run(stream, [])
        check_output(whole[0])
        assert _run(stream, cuts) == whole


@fuzz
@given(noise=st.binary(max_size=600), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_random_bytes_after_the_handshake_never_escape(noise: bytes, cuts: list[int]) -> None:
    handshake = handshake_bytes(channels=(1, 2))
    check_output(_run(handshake + noise, [len(handshake) + cut for cut in cuts])[0])


_cuts = st.lists(st.integers(0, 1 << 20), max_size=12)


@fuzz
@given(st.binary(max_size=3000), _cuts)
def test_random_bytes_to_an_answering_connection_never_escape(data: bytes, cuts: list[int]) -> None:
    _feed_checked(_echoing(), data, cuts)


@fuzz
@given(st.lists(st.binary(max_size=40), max_size=6),
       st.lists(st.sampled_from(range(len(PAMQP_VALID))), min_size=1, max_size=20), _cuts)
def test_random_payloads_in_valid_frame_heads(payloads: list[bytes], order: list[int],
                                              cuts: list[int]) -> None:
    """Well-framed garbage: right sizes and end octets, nonsense inside."""
    parts = [PAMQP_VALID[i] for i in order]
    for payload in payloads:
        ftype = payload[0] % 4 + 1 if payload else 1
        parts.append(struct.pack(">BHI", ftype, 1, len(payload)) + payload + b"\xce")
    _feed_checked(_echoing(), b"".join(parts), cuts)


def _mutate(data: st.DataObject, stream: bytearray) -> bytes:
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "byte", "truncate", "duplicate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(0, len(stream) - 1)))
        if kind == "flip" and stream:
            stream[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "byte" and stream:
            stream[at] = data.draw(st.integers(0, 255))
        elif kind == "truncate":
            del stream[at:]
        elif kind == "duplicate":
            stream[at:at] = stream[at:at + data.draw(st.integers(1, 40))]
        elif kind == "insert":
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        elif stream:
            del stream[at:at + data.draw(st.integers(1, 12))]
    return bytes(stream)


@fuzz
@given(data=st.data())
def test_mutated_valid_traffic_never_escapes(data: st.DataObject) -> None:
    stream = _mutate(data, bytearray(b"".join(VALID)))
    handshake = handshake_bytes(channels=(1, 2))
    cuts = data.draw(st.lists(st.integers(0, len(stream) + len(handshake)), max_size=5))
    check_output(_run(handshake + stream, cuts)[0])


@fuzz
@given(st.lists(st.sampled_from(range(len(PAMQP_VALID))), min_size=1, max_size=25), st.data(), _cuts)
def test_mutated_reordered_pamqp_traffic_never_escapes(order: list[int], data: st.DataObject,
                                                       cuts: list[int]) -> None:
    stream = _mutate(data, bytearray(b"".join(PAMQP_VALID[i] for i in order)))
    _feed_checked(_echoing(), stream, cuts)


@fuzz
@given(st.lists(st.sampled_from(range(len(PAMQP_VALID))), min_size=1, max_size=25), _cuts)
def test_unmutated_valid_streams_never_fail_the_connection(order: list[int],
                                                           cuts: list[int]) -> None:
    """Valid frames in any order may be refused, but only with a proper close, never a 541."""
    conn = _echoing()
    _feed_checked(conn, b"".join(PAMQP_VALID[i] for i in order), cuts)
    closes = [value for _, value in client.FrameReader().feed(outbox_bytes(conn))
              if isinstance(value, c.Connection.Close)]
    assert all(close.reply_code != 541 for close in closes), [x.reply_text for x in closes]


@fuzz
@given(noise=st.binary(max_size=64))
def test_garbage_instead_of_the_handshake_gets_our_header_or_a_close(noise: bytes) -> None:
    out, _calls, closed = _run(noise, [])
    check_output(out)
    if noise[:8] != PROTOCOL_HEADER[:len(noise[:8])]:
        assert closed and out.endswith(PROTOCOL_HEADER)


def test_nothing_is_written_or_called_after_the_connection_closed() -> None:
    conn, handler = new_server()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    assert conn.closed
    before = list(conn.outbox)
    conn.receive_data(handshake_bytes())
    assert conn.outbox == before and handler.calls == []


def test_the_valid_traffic_itself_is_accepted() -> None:
    out, _calls, closed = _run(handshake_bytes(channels=(1, 2)) + b"".join(VALID[:-3]), [])
    check_output(out)
    assert not closed


# --- rule 5: valid frames round-trip ------------------------------------------------------------

_name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.:", max_size=40)
_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                       exclude_categories=("Cs",)), max_size=30)
_table = st.dictionaries(_name.filter(bool), st.one_of(_text, st.booleans(),
                                                       st.integers(-(2**31), 2**31 - 1)), max_size=4)
_props = st.builds(Properties, content_type=st.none() | _text, headers=st.none() | _table,
                   delivery_mode=st.none() | st.sampled_from([1, 2]),
                   priority=st.none() | st.integers(0, 9), message_id=st.none() | _text)


@fuzz
@given(exchange=_text, routing_key=_text, body=st.binary(max_size=9000), props=_props,
       frame_max=st.sampled_from([4096, 131072]), mandatory=st.booleans(),
       cuts=st.lists(st.integers(0, 10_000), max_size=6))
def test_a_publish_reaches_the_handler_unchanged(exchange: str, routing_key: str, body: bytes,
                                                 props: Properties, frame_max: int, mandatory: bool,
                                                 cuts: list[int]) -> None:
    raw = encode_properties(props)
    data = client.encode_publish(1, exchange, routing_key, body, raw, frame_max, mandatory)
    conn, handler = opened()
    pos = 0
    for cut in [*sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]:
        conn.receive_data(data[pos:cut])
        pos = cut
    assert handler.calls == [("on_publish", 1, exchange, routing_key, mandatory, body, props, raw)]
    assert conn.outbox == [] and not conn.closed


@fuzz
@given(queue=_name, durable=st.booleans(), exclusive=st.booleans(), arguments=_table,
       tags=st.lists(st.tuples(st.integers(1, 2**64 - 1), st.booleans()), max_size=5))
def test_methods_and_acks_reach_the_handler_unchanged(queue: str, durable: bool, exclusive: bool,
                                                      arguments: dict[str, Any],
                                                      tags: list[tuple[int, bool]]) -> None:
    declare = c.Queue.Declare(queue=queue, durable=durable, exclusive=exclusive, arguments=arguments)
    data = client.encode_method(1, declare)
    used, _, theirs = pframe.unmarshal(data)  # pamqp, the independent decoder, agrees
    assert used == len(data) and dict(theirs) == dict(declare)
    data += b"".join(client.encode_ack(1, tag, multiple) for tag, multiple in tags)
    conn, handler = opened()
    conn.receive_data(data)
    [(name, channel, method), *acks] = handler.calls
    assert (name, channel, type(method), dict(method)) == ("on_method", 1, c.Queue.Declare, dict(declare))
    assert acks == [("on_ack", 1, tag, multiple) for tag, multiple in tags]


@fuzz
@given(ctag=_name, tag=st.integers(1, 2**64 - 1), redelivered=st.booleans(), exchange=_text,
       routing_key=_text, body=st.binary(max_size=9000), props=_props)
def test_a_delivery_reaches_the_client_unchanged(ctag: str, tag: int, redelivered: bool, exchange: str,
                                                 routing_key: str, body: bytes, props: Properties) -> None:
    conn, _ = opened()
    conn.send_deliver(1, ctag, tag, redelivered, exchange, routing_key,
                      Message(exchange, routing_key, body, props, None))  # None: encode props
    out = outbox_bytes(conn)
    check_output(out)
    size = struct.unpack_from(">I", out, 3)[0]
    assert client.decode_deliver(out, 7, 7 + size) == (ctag, tag, redelivered, exchange, routing_key)
    header_at = 8 + size
    header_size = struct.unpack_from(">I", out, header_at + 3)[0]
    raw = out[header_at + 7 + 12:header_at + 7 + header_size]
    assert decode_properties(raw) == props
    [(_, deliver), (_, header), *rest] = client.FrameReader().feed(out)  # pamqp reads it too
    assert isinstance(deliver, c.Basic.Deliver) and deliver.routing_key == routing_key
    assert isinstance(header, pheader.ContentHeader) and header.body_size == len(body)
    bodies = [f for _, f in rest]
    assert all(isinstance(b, pbody.ContentBody) for b in bodies)
    assert b"".join(b.value for b in bodies) == body  # type: ignore[attr-defined]


# --- the suite can fail: planted decoder bugs are caught ------------------------------------------


def _caught(test: Callable[[], None]) -> BaseException:
    """Run a property test expected to fail; return what it raised."""
    try:
        test()
    except BaseException as exc:  # hypothesis re-raises the falsifying example's error
        return exc
    pytest.fail("a planted codec bug went unnoticed")


def _is_assertion(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return exc.subgroup(AssertionError) is not None
    return isinstance(exc, AssertionError)


def test_a_decoder_that_raises_is_caught_as_an_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder bug the codec swallows into a 541 close: rule 2 sees it."""
    real = hotpath.decode_publish

    def broken(data: bytes, start: int, end: int) -> tuple[str, str, int]:
        exchange, routing_key, bits = real(data, start, end)
        if routing_key:
            raise KeyError(routing_key)
        return exchange, routing_key, bits

    monkeypatch.setattr(hotpath, "decode_publish", broken)
    assert _is_assertion(_caught(test_frame_shaped_garbage_never_escapes_and_chunking_does_not_matter))


def test_a_decoder_that_lies_is_caught_by_the_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that loses the last octet of a long routing key: nothing escapes, rule 5 sees it."""
    real = hotpath.decode_publish

    def lossy(data: bytes, start: int, end: int) -> tuple[str, str, int]:
        exchange, routing_key, bits = real(data, start, end)
        return exchange, routing_key[:3], bits

    monkeypatch.setattr(hotpath, "decode_publish", lossy)
    assert _is_assertion(_caught(test_a_publish_reaches_the_handler_unchanged))


def test_an_encoder_that_writes_a_bad_frame_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A confirm one octet short: rule 3 sees the broken framing in the output."""
    real = hotpath.confirm_frame
    monkeypatch.setattr(hotpath, "confirm_frame", lambda *args: real(*args)[:-1])
    assert _is_assertion(_caught(test_random_payloads_in_valid_frame_heads))
