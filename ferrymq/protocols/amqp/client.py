"""A minimal sans-IO AMQP 0-9-1 *client* side: encoders, a frame reader and struct decoders.

Used by the codec tests and the load generator. The encoders are plain byte builders (publish is
pre-encodable once and sent many times); the reader hands back pamqp objects, which is fine off
the broker's hot path. The ``decode_*`` functions read the few server frames a client meets per
message (deliver, confirm, close) straight from a buffer, as the server's hot path reads
publishes: positions in, plain values out, no object per frame.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

from pamqp import frame as pframe
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader, ProtocolHeader
from pamqp.heartbeat import Heartbeat

from ferrymq import limits
from ferrymq.protocols.amqp.frames import (
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_OVERHEAD_BYTES,
    PROTOCOL_HEADER,
    frame,
)
from ferrymq.protocols.amqp.hotpath import SHORT_LEN, utf8
from ferrymq.protocols.amqp.methods import encode_method as method_payload

_PUBLISH_HEAD = struct.Struct(">BHIHHH")  # frame head, class, method, reserved ticket
_CONTENT_HEAD = struct.Struct(">BBHIHHQ")  # end of the method frame + content header head
_ACK = struct.Struct(">BHIHHQBB")  # a whole basic.ack frame
_TAG = struct.Struct(">Q")
_TAG_BIT = struct.Struct(">QB")
_U16 = struct.Struct(">H")

ClientFrame = Frame | ContentHeader | ContentBody | Heartbeat


def protocol_header() -> bytes:
    return PROTOCOL_HEADER


def encode_method(channel: int, method: Frame) -> bytes:
    """Any method as a whole frame (the same encoder the server uses for rare methods)."""
    return frame(1, channel, method_payload(method))


def encode_publish(
    channel: int, exchange: str, routing_key: str, body: bytes, raw_props: bytes = b"\x00\x00",
    frame_max: int = limits.FRAME_MAX_BYTES, mandatory: bool = False,
) -> bytes:
    """basic.publish + content header (``raw_props`` is the property section, flags first) +
    body frames of at most ``frame_max``."""
    ex, rk = utf8(exchange), utf8(routing_key)
    size = len(body)
    parts = [
        _PUBLISH_HEAD.pack(1, channel, 9 + len(ex) + len(rk), 60, 40, 0),
        SHORT_LEN[len(ex)], ex, SHORT_LEN[len(rk)], rk, b"\x01" if mandatory else b"\x00",
        _CONTENT_HEAD.pack(0xCE, 2, channel, 12 + len(raw_props), 60, 0, size), raw_props,
        b"\xce",
    ]
    chunk = frame_max - FRAME_OVERHEAD_BYTES
    for start in range(0, size, chunk):
        parts.append(frame(FRAME_BODY, channel, body[start:start + chunk]))
    return b"".join(parts)


def encode_ack(channel: int, delivery_tag: int, multiple: bool = False) -> bytes:
    return _ACK.pack(1, channel, 13, 60, 80, delivery_tag, 1 if multiple else 0, 0xCE)


def encode_acks(channel: int, delivery_tags: Iterable[int]) -> bytes:
    """One single basic.ack per tag, as one buffer: a consumer acks a whole read in one write."""
    pack = _ACK.pack
    return b"".join([pack(1, channel, 13, 60, 80, tag, 0, 0xCE) for tag in delivery_tags])


def encode_reject(channel: int, delivery_tag: int, requeue: bool = False) -> bytes:
    """basic.reject: the same layout as basic.ack (tag, one bit), method 90."""
    return _ACK.pack(1, channel, 13, 60, 90, delivery_tag, 1 if requeue else 0, 0xCE)


# --- server -> client, read in place ---------------------------------------------------------
# ``start`` is where a method frame's payload begins (its class and method ids), as in hotpath.


def decode_deliver_tag(data: bytes | bytearray, start: int) -> int:
    """The delivery tag of a basic.deliver: after the consumer tag (a short string)."""
    return _TAG.unpack_from(data, start + 5 + data[start + 4])[0]


def decode_deliver(data: bytes | bytearray, start: int, end: int) -> tuple[str, int, bool, str, str]:
    """(consumer tag, delivery tag, redelivered, exchange, routing key) of a basic.deliver
    payload ``data[start:end]``; raises ValueError or IndexError when malformed."""
    pos = start + 4
    ctag_end = pos + 1 + data[pos]
    tag, bits = _TAG_BIT.unpack_from(data, ctag_end)
    ex_at = ctag_end + 9
    rk_at = ex_at + 1 + data[ex_at]
    if rk_at + 1 + data[rk_at] != end:
        raise ValueError("basic.deliver arguments do not fill the frame")
    return (bytes(data[pos + 1:ctag_end]).decode(), tag, bool(bits & 1),
            bytes(data[ex_at + 1:rk_at]).decode(), bytes(data[rk_at + 1:end]).decode())


def decode_confirm(data: bytes | bytearray, start: int) -> tuple[int, bool]:
    """(delivery tag, multiple) of a basic.ack or basic.nack from the server."""
    tag, bits = _TAG_BIT.unpack_from(data, start + 4)
    return tag, bool(bits & 1)


def decode_close(data: bytes | bytearray, start: int) -> tuple[int, str]:
    """(reply code, reply text) of a connection.close or channel.close."""
    code = _U16.unpack_from(data, start + 4)[0]
    at = start + 6
    return code, bytes(data[at + 1:at + 1 + data[at]]).decode("utf-8", "replace")


class FrameReader:
    """Feed it the server's bytes; iterate (channel, frame) pairs as frames complete."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buf)

    def take_pending(self) -> bytes:
        """Hand over the buffered bytes (frames not yet iterated, or a partial one) and forget
        them: a client that reads per-message frames with its own loop starts from these."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest

    def feed(self, data: bytes) -> Iterator[tuple[int, ClientFrame]]:
        self._buf += data
        while len(self._buf) >= 8:
            if self._buf.startswith(b"AMQP"):  # the server refused our protocol header
                raise ValueError(f"server wants protocol {bytes(self._buf[:8])!r}")
            size = FRAME_HEAD.unpack_from(self._buf, 0)[2]
            if len(self._buf) < size + 8:
                return
            raw = bytes(self._buf[:size + 8])
            del self._buf[:size + 8]
            _, channel, value = pframe.unmarshal(raw)
            if isinstance(value, ProtocolHeader):  # only a server refusing us sends one
                raise ValueError(f"server wants protocol {raw!r}")
            yield channel, value
