"""A minimal sans-IO AMQP 0-9-1 *client* side: encoders and a frame reader.

Used by the codec tests and the load generator. The encoders are plain byte builders (publish is
pre-encodable once and sent many times); the reader hands back pamqp objects, which is fine off
the broker's hot path.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from pamqp import frame as pframe
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader
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


class FrameReader:
    """Feed it the server's bytes; iterate (channel, frame) pairs as frames complete."""

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame still waiting for the rest."""
        return len(self._buf)

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
            yield channel, value
