"""Fuzzing the AMQP server codec after a valid handshake.

Whatever arrives, ``receive_data`` must not raise, and what the server writes must always be a
clean sequence of frames (size prefix honoured, 0xCE at the end, method frames decodable by pamqp).
"""

from __future__ import annotations

import itertools
import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import body as pbody
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader
from pamqp import heartbeat as pheartbeat

from ferrymq.core.message import Message
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.server_properties import server_properties
from tests.unit.test_wire_codec import RecordingHandler, handshake_bytes, m, publish_bytes

FRAME_MAX = 4096
# FERRYMQ_FUZZ_EXAMPLES=20000 for a long run; the default keeps the suite fast.
FUZZ = settings(max_examples=int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "200")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class EchoHandler(RecordingHandler):
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


def _handshaken() -> AMQPServerConnection:
    handler = EchoHandler()
    conn = AMQPServerConnection(handler, server_properties(), message_max=64 * 1024)
    handler.conn = conn
    conn.receive_data(handshake_bytes(FRAME_MAX))
    assert not conn.closed
    conn.outbox.clear()
    return conn


def check_outbox(conn: AMQPServerConnection) -> None:
    data = b"".join(bytes(part) for part in conn.outbox)
    pos = 0
    while pos < len(data):
        assert len(data) - pos >= 8, "a truncated frame in the output"
        ftype, _, size = struct.unpack_from(">BHI", data, pos)
        assert ftype in (1, 2, 3, 8), ftype
        end = pos + 7 + size
        assert end < len(data), "frame size runs past the output"
        assert data[end] == 0xCE, "frame does not end with 0xCE"
        if ftype == 1:
            used, _, value = pframe.unmarshal(data[pos:end + 1])
            assert used == size + 8 and value is not None
        pos = end + 1
    assert pos == len(data)


def feed(conn: AMQPServerConnection, data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` split at the given (sorted, deduplicated) offsets."""
    bounds = [0, *sorted({cut % (len(data) + 1) for cut in cuts}), len(data)]
    for start, stop in itertools.pairwise(bounds):
        conn.receive_data(data[start:stop])  # must never raise
        check_outbox(conn)


def _valid_frames() -> list[bytes]:
    """A realistic client stream, one frame per entry."""
    props = c.Basic.Properties(content_type="text/plain", delivery_mode=2, priority=3,
                               headers={"k": "v", "n": 5, "b": True, "t": {"x": 1}})
    frames = [
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
    ]
    frames.append(publish_bytes(1, "e", "r", b"hello"))
    return frames


VALID = _valid_frames()

_cuts = st.lists(st.integers(0, 1 << 20), max_size=12)


@FUZZ
@given(st.binary(max_size=3000), _cuts)
def test_random_bytes_after_handshake(data: bytes, cuts: list[int]) -> None:
    conn = _handshaken()
    feed(conn, data, cuts)


@FUZZ
@given(st.lists(st.binary(max_size=40), max_size=6), st.lists(st.sampled_from(range(len(VALID))),
                                                              min_size=1, max_size=20), _cuts)
def test_random_payloads_in_valid_frame_heads(payloads: list[bytes], order: list[int],
                                              cuts: list[int]) -> None:
    """Well-framed garbage: right sizes and end octets, nonsense inside."""
    conn = _handshaken()
    parts = [VALID[i] for i in order]
    for payload in payloads:
        ftype = payload[0] % 4 + 1 if payload else 1
        parts.append(struct.pack(">BHI", ftype, 1, len(payload)) + payload + b"\xce")
    feed(conn, b"".join(parts), cuts)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("byte"), st.integers(0, 1 << 20), st.integers(0, 255)),
)


@FUZZ
@given(
    st.lists(st.sampled_from(range(len(VALID))), min_size=1, max_size=25),  # reorder/duplicate
    st.lists(_mutation, max_size=6),
    _cuts,
)
def test_mutated_valid_streams(order: list[int], mutations: list[tuple[str, int, int]],
                               cuts: list[int]) -> None:
    conn = _handshaken()
    data = bytearray(b"".join(VALID[i] for i in order))
    for kind, where, arg in mutations:
        if not data:
            break
        at = where % len(data)
        if kind == "flip":
            data[at] ^= 1 << arg
        elif kind == "byte":
            data[at] = arg
        else:
            del data[at:]
    feed(conn, bytes(data), cuts)


@FUZZ
@given(st.lists(st.sampled_from(range(len(VALID))), min_size=1, max_size=25), _cuts)
def test_unmutated_valid_streams_never_fail_the_connection(order: list[int],
                                                           cuts: list[int]) -> None:
    """Valid frames in any order may be refused, but only with a proper close, never a 541."""
    conn = _handshaken()
    feed(conn, b"".join(VALID[i] for i in order), cuts)
    data = b"".join(bytes(part) for part in conn.outbox)
    closes = [value for _, _, value in _frames(data) if isinstance(value, c.Connection.Close)]
    assert all(close.reply_code != 541 for close in closes), [x.reply_text for x in closes]


def _frames(data: bytes) -> list[tuple[int, int, Any]]:
    out = []
    pos = 0
    while pos < len(data):
        used, channel, value = pframe.unmarshal(data[pos:])
        out.append((used, channel, value))
        pos += used
    return out
