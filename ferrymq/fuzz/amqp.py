"""AMQP 0-9-1 targets: whole frames into a server connection, field tables, content headers and
method arguments on their own.

The protocol's own errors: the connection answers every bad input with a connection.close or
channel.close carrying an AMQP reply code (541 INTERNAL_ERROR is the codec catching a bug of its
own, so it is a finding); on their own, the decoders raise TableError (tables), SyntaxError_
(content headers) and MethodDecodeError (methods). Decoded values must encode again, and that
encoding must read back to itself: a decoder that accepts what its encoder cannot write back is a
broker that crashes on delivery.
"""

from __future__ import annotations

import struct
from decimal import Decimal
from functools import cache
from typing import Any

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.core.properties import Properties
from ferrymq.errors import INTERNAL_ERROR, ProtocolError
from ferrymq.fuzz.target import Finding, Target
from ferrymq.protocols.amqp import client
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.frames import (
    CHANNEL_CLOSE,
    CONNECTION_CLOSE,
    CONTENT_HEADER_HEAD,
    FRAME_HEAD,
    METHOD_ID,
)
from ferrymq.protocols.amqp.methods import MethodDecodeError, decode_method, encode_method, method_class
from ferrymq.protocols.amqp.properties import decode_properties, encode_properties
from ferrymq.protocols.amqp.server_properties import server_properties
from ferrymq.protocols.amqp.tables import TableError, decode_table, encode_table

_CLOSE_CODE = struct.Struct(">H")
_SAMPLE_HEADERS: dict[str, Any] = {
    "s": "text", "n": 5, "neg": -(2**40), "f": 1.5, "t": True, "v": None, "b": b"\x00\xff",
    "d": Decimal("1.25"), "a": [1, "x", {"in": [None, False]}], "nest": {"deep": {"er": 1}},
}
_PROPS = Properties(content_type="application/json", content_encoding="gzip", headers=_SAMPLE_HEADERS,
                    delivery_mode=2, priority=4, correlation_id="c-1", reply_to="amq.rabbitmq.reply-to",
                    expiration="60000", message_id="m-1", timestamp=1_700_000_000, type="t",
                    user_id="guest", app_id="app")


class NullHandler:
    """The layer above the codec, accepting everything: no 541 may then come from anywhere but
    the codec itself."""

    def __getattr__(self, name: str) -> Any:
        return _ignore


def _ignore(*_args: Any) -> None:
    return None


@cache
def _handshake() -> bytes:
    methods = [c.Connection.StartOk({"product": "fuzz"}, "PLAIN", "\0guest\0guest", "en_US"),
               c.Connection.TuneOk(0, 4096, 0), c.Connection.Open("/")]
    return b"".join([client.protocol_header(), *(client.encode_method(0, m) for m in methods),
                     client.encode_method(1, c.Channel.Open()), client.encode_method(2, c.Channel.Open())])


def frames_one_input(data: bytes) -> None:
    """Client traffic after a handshake (frame_max 4096, channels 1 and 2 open), then the output."""
    conn = AMQPServerConnection(NullHandler(), server_properties())  # type: ignore[arg-type]
    conn.receive_data(_handshake())
    conn.outbox.clear()
    conn.receive_data(data)
    check_output(b"".join(bytes(part) for part in conn.outbox))


def check_output(out: bytes) -> None:
    """Whole frames only, and every close carries a protocol reply code other than 541."""
    pos = 0
    while pos < len(out):
        if out[pos:pos + 8] == client.protocol_header():  # a refused header: ours, then nothing
            pos += 8
            continue
        if len(out) - pos < 8:
            raise Finding(f"a truncated frame at byte {pos} of the output")
        ftype, _channel, size = FRAME_HEAD.unpack_from(out, pos)
        end = pos + 7 + size
        if ftype not in (1, 2, 3, 8) or end >= len(out) or out[end] != 0xCE:
            raise Finding(f"a broken frame (type {ftype}, size {size}) at byte {pos} of the output")
        if ftype == 1 and size >= 6 and METHOD_ID.unpack_from(out, pos + 7)[0] in (CONNECTION_CLOSE,
                                                                                    CHANNEL_CLOSE):
            (code,) = _CLOSE_CODE.unpack_from(out, pos + 11)
            if code == INTERNAL_ERROR:
                raise Finding(f"a 541 close: {out[pos + 14:end]!r}")
        pos = end + 1


def frame_seeds() -> list[bytes]:
    raw = encode_properties(_PROPS)
    return [
        client.encode_publish(1, "ex", "rk", b"body" * 3, raw),
        client.encode_publish(2, "", "q", b"x" * 5000, frame_max=4096, mandatory=True),
        client.encode_publish(1, "", "q", b"") + client.encode_ack(1, 3) + client.encode_ack(1, 4, True),
        client.encode_method(1, c.Basic.Nack(5, requeue=True)) + client.encode_reject(1, 6, True),
        client.encode_method(1, c.Queue.Declare(queue="q", arguments={"x-max-length": 5, **_SAMPLE_HEADERS})),
        client.encode_method(1, c.Exchange.Declare(exchange="e", exchange_type="topic")),
        client.encode_method(1, c.Queue.Bind(queue="q", exchange="e", routing_key="a.#")),
        client.encode_method(1, c.Basic.Consume(queue="q", arguments={"x-priority": 3})),
        client.encode_method(1, c.Basic.Qos(prefetch_count=10))
        + client.encode_method(1, c.Basic.Get(queue="q")),
        client.encode_method(2, c.Channel.Flow(True)) + client.encode_method(1, c.Confirm.Select()),
        client.encode_method(1, c.Tx.Select()) + client.encode_method(1, c.Tx.Commit()),
        client.encode_method(3, c.Channel.Open()) + client.encode_method(2, c.Channel.Close(200, "", 0, 0)),
        client.encode_method(0, c.Connection.Close(200, "", 0, 0)),
        client.encode_method(0, c.Connection.UpdateSecret("\0guest\0guest", "rotate")),
        b"\x08\x00\x00\x00\x00\x00\x00\xce",
    ]


def tables_one_input(data: bytes) -> None:
    """A field table's entries (after its length); a decoded table encodes and reads back alike."""
    try:
        table = decode_table(data, 0, len(data))
    except TableError:
        return
    _stable(encode_table(table), lambda raw: encode_table(decode_table(raw, 4, len(raw))))


def _stable(first: bytes, again: Any) -> None:
    """``again(first) == first``: what the encoder wrote from decoded input decodes to the same."""
    second = again(first)
    if second != first:
        raise Finding(f"the encoding does not read back: {first[:60]!r} then {second[:60]!r}")


def table_seeds() -> list[bytes]:
    tables = [_SAMPLE_HEADERS, {"x-max-length": 5, "x-queue-type": "quorum"},
              {"k": [[[]], {}], "ts": _PROPS.timestamp}]
    return [encode_table(table)[4:] for table in tables]


def content_header_one_input(data: bytes) -> None:
    """A content header frame's payload: class id, weight, body size, then the property section."""
    if len(data) < CONTENT_HEADER_HEAD.size + 2:
        return
    try:
        props = decode_properties(data[CONTENT_HEADER_HEAD.size:])
    except ProtocolError:
        return
    _stable(encode_properties(props), lambda raw: encode_properties(decode_properties(raw)))


def content_header_seeds() -> list[bytes]:
    head = CONTENT_HEADER_HEAD.pack(60, 0, 12)
    return [head + encode_properties(_PROPS), head + encode_properties(Properties(delivery_mode=1)),
            head + encode_properties(Properties(headers={"x-delay": 5}, priority=1)), head + b"\x00\x00"]


def methods_one_input(data: bytes) -> None:
    """A method frame's payload: class and method ids, then the arguments."""
    if len(data) < 4:
        return
    cls = method_class(METHOD_ID.unpack_from(data)[0])
    if cls is None:
        return
    try:
        method = decode_method(cls, data, 4, len(data))
    except MethodDecodeError:
        return
    _stable(encode_method(method), lambda raw: encode_method(_decoded(raw)))


def _decoded(raw: bytes) -> Frame:
    cls = method_class(METHOD_ID.unpack_from(raw)[0])
    assert cls is not None
    return decode_method(cls, raw, 4, len(raw))


def method_seeds() -> list[bytes]:
    return [seed[7:-1] for seed in frame_seeds()[4:14]] + [
        encode_method(c.Connection.StartOk({"capabilities": {"publisher_confirms": True}}, "PLAIN",
                                           "\0u\0p", "en_US")),
        encode_method(c.Basic.Publish(exchange="e", routing_key="r", mandatory=True))]


TARGETS = [
    Target("amqp-frames", frames_one_input, frame_seeds,
           "a connection.close/channel.close with a reply code other than 541, whole frames out"),
    Target("amqp-tables", tables_one_input, table_seeds, "TableError; decoded tables re-encode stably"),
    Target("amqp-content-headers", content_header_one_input, content_header_seeds,
           "SyntaxError_ (502); decoded properties re-encode stably"),
    Target("amqp-methods", methods_one_input, method_seeds,
           "MethodDecodeError (501); decoded methods re-encode stably"),
]
