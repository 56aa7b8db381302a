"""The per-message bytes of the load generator, on the project's AMQP codec.

A publish is encoded once by ``protocols.amqp.client.encode_publish`` into a ``PublishTemplate``
with an 8-byte hole at the start of the body for the send time, so sending is two
concatenations. What the broker sends back is scanned in place for the few frames the generator
counts: confirms (``ConfirmTracker``), deliveries and the send time at the start of their first
body frame (``DeliveryScanner``), and closes; the frame head, method ids and argument decoders are
the codec's (``frames``, ``client.decode_*``). Acks go out through ``client.encode_acks``.
"""

from __future__ import annotations

import struct

from ferrymq.client.connection import CHANNEL, DEFAULT_FRAME_MAX, BrokerClosed
from ferrymq.core.properties import EMPTY_PROPERTIES, Properties
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
    FRAME_HEADER_SIZE,
    FRAME_METHOD,
    FRAME_OVERHEAD_BYTES,
    METHOD_ID,
)
from ferrymq.protocols.amqp.properties import encode_properties

STAMP = struct.Struct(">Q")  # the send time, time.monotonic_ns(), first 8 body bytes
MIN_SIZE = 9  # body: send time (8 bytes), then the attempt count of a retried job (1 byte)
CONFIRMS = frozenset((BASIC_ACK, BASIC_NACK))
CLOSES = frozenset((CONNECTION_CLOSE, CHANNEL_CLOSE))
_PERSISTENT = encode_properties(Properties(delivery_mode=2))
_NO_PROPERTIES = encode_properties(EMPTY_PROPERTIES)


def closed_error(buf: bytes | bytearray, start: int) -> BrokerClosed:
    code, text = codec.decode_close(buf, start)
    return BrokerClosed(f"broker closed: {code} {text}")


class PublishTemplate:
    """One basic.publish (by default to the default exchange, routing key = queue) pre-encoded as
    bytes, split around the 8-byte send time at the start of the body:

        prefix = method frame + content header frame + first body frame's head
        suffix = rest of the first body frame + frame end [+ further body frames]

    ``one(ts)`` is ``prefix + STAMP.pack(ts) + suffix``: two concatenations, no encoding."""

    def __init__(self, routing_key: str, size: int, *, persistent: bool = False,
                 frame_max: int = DEFAULT_FRAME_MAX, exchange: str = "", channel: int = CHANNEL) -> None:
        if size < MIN_SIZE:
            raise ValueError(f"bodies carry a {MIN_SIZE}-byte stamp (send time, attempt): "
                             f"--size must be >= {MIN_SIZE}")
        props = _PERSISTENT if persistent else _NO_PROPERTIES
        whole = codec.encode_publish(channel, exchange, routing_key, bytes(size), props, frame_max)
        # The first body frame's payload begins after the method and content header frames.
        at = len(codec.encode_publish(channel, exchange, routing_key, b"", props)) + FRAME_HEADER_SIZE
        self.size = size
        self.prefix = whole[:at]
        self.suffix = whole[at + STAMP.size:]
        self.frame_bytes = len(whole)
        assert min(size, frame_max - FRAME_OVERHEAD_BYTES) >= STAMP.size

    def one(self, ts_ns: int) -> bytes:
        return self.prefix + STAMP.pack(ts_ns) + self.suffix

    def same_time(self, ts_ns: int, n: int) -> bytes:
        """n publishes stamped alike (they leave in one write, so they are sent alike)."""
        return self.one(ts_ns) * n

    def stamped(self, stamps: list[int] | range) -> bytes:
        """One publish per stamp (fixed-rate mode: each carries its intended send time)."""
        prefix, suffix, pack = self.prefix, self.suffix, STAMP.pack
        return b"".join([prefix + pack(ts) + suffix for ts in stamps])

    def retry(self, ts_ns: int, attempt: int) -> bytes:
        """A republish of a failed job: the original send time, the attempt count in body[8]."""
        return self.prefix + STAMP.pack(ts_ns) + bytes((min(attempt, 255),)) + self.suffix[1:]


class ConfirmTracker:
    """Publisher-confirm accounting over delivery tags 1..n, for acks and nacks, single or
    multiple, in any order. The common case (in-order, or multiple) touches two ints."""

    __slots__ = ("acked", "nacked", "pending", "upto")

    def __init__(self) -> None:
        self.upto = 0  # every tag <= upto is settled
        self.pending: set[int] = set()  # settled tags above upto (out-of-order singles)
        self.acked = 0
        self.nacked = 0

    @property
    def settled(self) -> int:
        return self.acked + self.nacked

    def settle(self, tag: int, multiple: bool, nack: bool) -> None:
        if tag <= self.upto or tag in self.pending:
            return
        if multiple:
            newly = tag - self.upto
            if self.pending:
                below = {t for t in self.pending if t <= tag}
                newly -= len(below)
                self.pending -= below
            self.upto = tag
        else:
            newly = 1
            if tag == self.upto + 1:
                self.upto = tag
            else:
                self.pending.add(tag)
        while self.pending and self.upto + 1 in self.pending:
            self.upto += 1
            self.pending.discard(self.upto)
        if nack:
            self.nacked += newly
        else:
            self.acked += newly

    def feed(self, buf: bytearray) -> int:
        """Scan whole frames in buf for confirms; returns the bytes consumed (caller deletes).
        Raises BrokerClosed on connection.close / channel.close."""
        pos, n = 0, len(buf)
        unpack_head, unpack_id, decode = FRAME_HEAD.unpack_from, METHOD_ID.unpack_from, codec.decode_confirm
        while n - pos >= 8:
            ftype, _, size = unpack_head(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if ftype == FRAME_METHOD:
                (cm,) = unpack_id(buf, pos + 7)
                if cm in CONFIRMS:
                    tag, multiple = decode(buf, pos + 7)
                    upto = self.upto
                    if not self.pending and (tag == upto + 1 or (multiple and tag > upto)):
                        self.upto = tag  # fast path: in order, or a multiple beyond upto
                        if cm == BASIC_ACK:
                            self.acked += tag - upto
                        else:
                            self.nacked += tag - upto
                    else:
                        self.settle(tag, multiple, cm == BASIC_NACK)
                elif cm in CLOSES:
                    raise closed_error(buf, pos + 7)
            pos = end
        return pos


class DeliveryScanner:
    """Finds basic.deliver frames (delivery tag) and the send time at the start of the first
    body frame of each delivery. Frames split across reads are left in the buffer."""

    __slots__ = ("want_stamp",)

    def __init__(self) -> None:
        self.want_stamp = False  # a content header was seen; its first body frame is next

    def feed(self, buf: bytearray, tags: list[int], stamps: list[int],
             attempts: list[int] | None = None) -> int:
        """Appends each delivery's tag and send time (and body[8], the attempt count, when
        ``attempts`` is given); returns the bytes consumed."""
        pos, n = 0, len(buf)
        want = self.want_stamp
        unpack_head, unpack_id = FRAME_HEAD.unpack_from, METHOD_ID.unpack_from
        unpack_stamp, deliver_tag = STAMP.unpack_from, codec.decode_deliver_tag
        while n - pos >= 8:
            ftype, _, size = unpack_head(buf, pos)
            end = pos + size + 8
            if end > n:
                break
            if ftype == FRAME_BODY:
                if want:
                    stamps.append(unpack_stamp(buf, pos + 7)[0])
                    if attempts is not None:
                        attempts.append(buf[pos + 15])
                    want = False
            elif ftype == FRAME_HEADER:
                want = True
            elif ftype == FRAME_METHOD:
                (cm,) = unpack_id(buf, pos + 7)
                if cm == BASIC_DELIVER:
                    tags.append(deliver_tag(buf, pos + 7))
                elif cm in CLOSES:
                    raise closed_error(buf, pos + 7)
            pos = end
        self.want_stamp = want
        return pos


def check_for_close(buf: bytearray) -> int:
    """Skip whole frames (fire-and-forget producer), raising on a close; returns bytes consumed."""
    pos, n = 0, len(buf)
    while n - pos >= 8:
        ftype, _, size = FRAME_HEAD.unpack_from(buf, pos)
        end = pos + size + 8
        if end > n:
            break
        if ftype == FRAME_METHOD and METHOD_ID.unpack_from(buf, pos + 7)[0] in CLOSES:
            raise closed_error(buf, pos + 7)
        pos = end
    return pos
