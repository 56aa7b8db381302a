"""What a consuming, confirming client reads back, scanned in place from its receive buffer.

A worker reads thousands of deliveries a second: each one is three frames (basic.deliver, content
header, body), and a confirm-mode publisher gets basic.ack/nack frames besides. ``InboundReader``
walks whole frames with the codec's frame head and method-id structs and hands back plain tuples
(no pamqp object per frame, which is what ``FrameReader`` costs); frames split across reads stay
in the buffer for the next feed.
"""

from __future__ import annotations

from ferrymq.client.connection import BrokerClosed
from ferrymq.protocols.amqp import client as codec
from ferrymq.protocols.amqp.frames import (
    BASIC_ACK,
    BASIC_DELIVER,
    BASIC_NACK,
    CHANNEL_CLOSE,
    CONNECTION_CLOSE,
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_METHOD,
    METHOD_ID,
)

BASIC_CANCEL = 60 << 16 | 30  # the broker cancelled a consumer (its queue was deleted)
CLOSES = frozenset((CONNECTION_CLOSE, CHANNEL_CLOSE))
CONFIRMS = frozenset((BASIC_ACK, BASIC_NACK))

# (consumer tag, delivery tag, redelivered, raw properties, body)
Delivery = tuple[str, int, bool, bytes, bytes]
# (delivery tag, multiple, nack)
Confirm = tuple[int, bool, bool]


class InboundReader:
    """Feed it received bytes; it appends complete deliveries and confirms to the caller's lists.
    A connection.close or channel.close raises BrokerClosed with the broker's code and text."""

    __slots__ = ("_body", "_head", "_props", "_size", "buf", "cancelled")

    def __init__(self) -> None:
        self.buf = bytearray()
        self._head: tuple[str, int, bool] | None = None  # the deliver whose content is arriving
        self._props = b""
        self._size = 0
        self._body: list[bytes] = []
        self.cancelled: list[str] = []  # consumer tags the broker cancelled

    def feed(self, data: bytes, deliveries: list[Delivery], confirms: list[Confirm]) -> None:
        buf = self.buf
        buf += data
        pos, n = 0, len(buf)
        unpack_head, unpack_id = FRAME_HEAD.unpack_from, METHOD_ID.unpack_from
        while n - pos >= 8:
            ftype, _, size = unpack_head(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if ftype == FRAME_BODY:
                self._on_body(bytes(buf[pos + 7:end - 1]), deliveries)
            elif ftype == FRAME_HEADER:
                self._size = int.from_bytes(buf[pos + 11:pos + 19], "big")
                self._props = bytes(buf[pos + 19:end - 1])
                self._body = []
                if self._size == 0:
                    self._on_body(b"", deliveries)
            elif ftype == FRAME_METHOD:
                self._on_method(unpack_id(buf, pos + 7)[0], pos + 7, end - 1, confirms)
            pos = end
        del buf[:pos]

    def _on_method(self, cm: int, start: int, end: int, confirms: list[Confirm]) -> None:
        buf = self.buf
        if cm == BASIC_DELIVER:
            ctag, tag, redelivered, _, _ = codec.decode_deliver(buf, start, end)
            self._head = (ctag, tag, redelivered)
        elif cm in CONFIRMS:
            tag, multiple = codec.decode_confirm(buf, start)
            confirms.append((tag, multiple, cm == BASIC_NACK))
        elif cm in CLOSES:
            code, text = codec.decode_close(buf, start)
            raise BrokerClosed(f"broker closed: {code} {text}")
        elif cm == BASIC_CANCEL:
            self.cancelled.append(bytes(buf[start + 5:start + 5 + buf[start + 4]]).decode())

    def _on_body(self, chunk: bytes, deliveries: list[Delivery]) -> None:
        head = self._head
        if head is None:  # content without a deliver (a basic.return): not ours to hand out
            return
        if chunk and (self._body or len(chunk) < self._size):
            self._body.append(chunk)
            if sum(map(len, self._body)) < self._size:
                return
            chunk = b"".join(self._body)
        deliveries.append((head[0], head[1], head[2], self._props, chunk))
        self._head = None
