"""Fuzzing the AMQP codec: random and mutated byte streams, fed in random chunks, after a valid
handshake. The rule (h11's): only the protocol's own answers may come out — receive_data never
raises, and whatever it writes is a sequence of well-formed frames."""

from __future__ import annotations

import os
import struct
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pamqp import commands as c
from pamqp import frame as pframe
from pamqp import header as pheader

from ferrymq.errors import PreconditionFailed
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.frames import PROTOCOL_HEADER

HANDSHAKE = b"".join([
    PROTOCOL_HEADER,
    pframe.marshal(c.Connection.StartOk({}, "PLAIN", "\0guest\0guest", "en_US"), 0),
    pframe.marshal(c.Connection.TuneOk(2047, 131072, 0), 0),
    pframe.marshal(c.Connection.Open("/"), 0),
    pframe.marshal(c.Channel.Open(), 1),
])


def _publish(body: bytes, channel: int = 1) -> bytes:
    return b"".join([
        pframe.marshal(c.Basic.Publish(exchange="", routing_key="q"), channel),
        pframe.marshal(pheader.ContentHeader(0, len(body), c.Basic.Properties(
            content_type="text/plain", headers={"k": 1})), channel),
        struct.pack(">BHI", 3, channel, len(body)) + body + b"\xce",
    ])


VALID_TRAFFIC = b"".join([
    _publish(b"hello"),
    pframe.marshal(c.Queue.Declare(queue="q"), 1),
    pframe.marshal(c.Basic.Ack(delivery_tag=1), 1),
    pframe.marshal(c.Basic.Nack(delivery_tag=2, multiple=True), 1),
    _publish(b""),
    pframe.marshal(c.Channel.Open(), 2),
    pframe.marshal(c.Channel.Close(200, "bye", 0, 0), 2),
])


class Handler:
    """Accepts everything, and raises the way the real broker does for some acks."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> None:
            self.calls += 1
            if name == "on_ack" and args[1] % 3 == 0:
                raise PreconditionFailed(f"unknown delivery tag {args[1]}")
        return call


def _check_frames(out: bytes) -> None:
    """Everything the server wrote parses as whole frames (or is our protocol header)."""
    if out.startswith(PROTOCOL_HEADER):
        out = out[len(PROTOCOL_HEADER):]
    pos = 0
    while pos < len(out):
        assert len(out) - pos >= 8, "truncated frame in output"
        ftype, _, size = struct.unpack_from(">BHI", out, pos)
        assert ftype in (1, 2, 3, 8)
        assert out[pos + 7 + size] == 0xCE, "bad frame end in output"
        if ftype == 1 and out[pos + 7:pos + 11] == b"\x00\x0a\x00\x32":  # connection.close
            code = struct.unpack_from(">H", out, pos + 11)[0]
            assert code != 541, "541 INTERNAL_ERROR: an exception escaped the codec's own logic"
        pos += size + 8


def _feed(stream: bytes, cuts: list[int]) -> AMQPServerConnection:
    conn = AMQPServerConnection(Handler(), {"product": "fuzz"})
    pos = 0
    for cut in [*sorted(cuts), len(stream)]:
        conn.receive_data(stream[pos:cut])  # must never raise
        pos = max(pos, cut)
    _check_frames(b"".join(conn.outbox))
    return conn


# FERRYMQ_FUZZ_EXAMPLES raises the bound for a long run; CI keeps the default.
fuzz_settings = settings(max_examples=int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "300")), deadline=None,
                         suppress_health_check=[HealthCheck.too_slow])


@fuzz_settings
@given(noise=st.binary(max_size=600), cuts=st.lists(st.integers(0, 2000), max_size=6))
def test_random_bytes_after_handshake_never_escape(noise: bytes, cuts: list[int]) -> None:
    _feed(HANDSHAKE + noise, [len(HANDSHAKE) + c for c in cuts])


@fuzz_settings
@given(data=st.data())
def test_mutated_valid_traffic_never_escapes(data: st.DataObject) -> None:
    stream = bytearray(VALID_TRAFFIC)
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
    cuts = data.draw(st.lists(st.integers(0, len(stream) + len(HANDSHAKE)), max_size=5))
    _feed(HANDSHAKE + bytes(stream), cuts)


@fuzz_settings
@given(noise=st.binary(max_size=64))
def test_garbage_instead_of_the_handshake_gets_our_header_or_a_close(noise: bytes) -> None:
    conn = _feed(noise, [])
    if noise[:8] != PROTOCOL_HEADER[:len(noise[:8])]:
        assert conn.closed and conn.outbox[-1] == PROTOCOL_HEADER


def test_the_valid_traffic_itself_is_accepted() -> None:
    conn = _feed(HANDSHAKE + VALID_TRAFFIC, [])
    assert not conn.closed
