"""Fuzzing the server connection: frame-shaped garbage, random bytes and mutated valid traffic,
after (or instead of) a valid handshake.

The rules (h11's): ``receive_data`` never raises; everything written out decodes with pamqp as
whole frames; no close says 541 (that would be the codec's own bug, not the input's); and how the
input is cut into chunks never changes what happens. FERRYMQ_FUZZ_EXAMPLES raises the bound.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands as c

from ferrymq.core.properties import Properties
from ferrymq.errors import NotFound, PreconditionFailed
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER, frame
from ferrymq.protocols.amqp.properties import encode_properties
from ferrymq.protocols.amqp.server_properties import server_properties
from tests.unit.test_amqp_support import Recorder, comparable, handshake_bytes, new_server

EXAMPLES = int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "150"))
fuzz = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

METHOD_IDS = sorted(c.INDEX_MAPPING)
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


def _run(stream: bytes, cuts: list[int]) -> tuple[bytes, list[tuple[Any, ...]], bool]:
    handler = FailingRecorder()
    conn = AMQPServerConnection(handler, server_properties())
    pos = 0
    for cut in [*sorted(set(cuts)), len(stream)]:
        conn.receive_data(stream[pos:cut])  # must never raise
        pos = max(pos, cut)
    out = b"".join(bytes(part) for part in conn.outbox)
    return out, comparable(handler.calls), conn.closed


def _check_output(out: bytes) -> None:
    """Whole frames that pamqp decodes, and no 541 among the closes."""
    if out.endswith(b"AMQP\x00\x00\x09\x01"):  # refused protocol header
        out = out[:-8]
    reader = client.FrameReader()
    for _, method in reader.feed(out):
        if isinstance(method, c.Connection.Close | c.Channel.Close):
            assert method.reply_code != 541, method.reply_text
    assert not reader.pending, "a partial frame was written"


@fuzz
@given(parts=st.lists(frames(), min_size=1, max_size=12),
       cuts=st.lists(st.integers(0, 3000), max_size=8))
def test_frame_shaped_garbage_never_escapes_and_chunking_does_not_matter(
        parts: list[bytes], cuts: list[int]) -> None:
    stream = handshake_bytes(channels=(1, 2)) + b"".join(parts)
    whole = _run(stream, [])
    _check_output(whole[0])
    assert _run(stream, [len(handshake_bytes(channels=(1, 2))) + c for c in cuts]) == whole


@fuzz
@given(noise=st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_noise_at_any_point_of_the_handshake_never_escapes(noise: bytes, cuts: list[int]) -> None:
    handshake = handshake_bytes(channels=(1,))
    for at in (0, 8, 30, len(handshake)):
        stream = handshake[:at] + noise
        whole = _run(stream, [])
        _check_output(whole[0])
        assert _run(stream, cuts) == whole


def test_nothing_is_written_or_called_after_the_connection_closed() -> None:
    conn, handler = new_server()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    assert conn.closed
    before = list(conn.outbox)
    conn.receive_data(handshake_bytes())
    assert conn.outbox == before and handler.calls == []


@fuzz
@given(noise=st.binary(max_size=600), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_random_bytes_after_the_handshake_never_escape(noise: bytes, cuts: list[int]) -> None:
    handshake = handshake_bytes(channels=(1, 2))
    _check_output(_run(handshake + noise, [len(handshake) + c for c in cuts])[0])


@fuzz
@given(data=st.data())
def test_mutated_valid_traffic_never_escapes(data: st.DataObject) -> None:
    stream = bytearray(b"".join(VALID))
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "duplicate", "insert", "delete"]))
        at = data.draw(st.integers(0, max(0, len(stream) - 1)))
        if kind == "flip" and stream:
            stream[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "truncate":
            del stream[at:]
        elif kind == "duplicate":
            stream[at:at] = stream[at:at + data.draw(st.integers(1, 40))]
        elif kind == "insert":
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=12))
        elif stream:
            del stream[at:at + data.draw(st.integers(1, 12))]
    handshake = handshake_bytes(channels=(1, 2))
    cuts = data.draw(st.lists(st.integers(0, len(stream) + len(handshake)), max_size=5))
    _check_output(_run(handshake + bytes(stream), cuts)[0])


@fuzz
@given(noise=st.binary(max_size=64))
def test_garbage_instead_of_the_handshake_gets_our_header_or_a_close(noise: bytes) -> None:
    out, _calls, closed = _run(noise, [])
    if noise[:8] != PROTOCOL_HEADER[:len(noise[:8])]:
        assert closed and out.endswith(PROTOCOL_HEADER)


def test_the_valid_traffic_itself_is_accepted() -> None:
    out, _calls, closed = _run(handshake_bytes(channels=(1, 2)) + b"".join(VALID[:-3]), [])
    _check_output(out)
    assert not closed
