"""AMQP 0-9-1 framing: every frame is type(1) channel(2) size(4) payload end(1).

Method ids are kept as one number, ``class_id << 16 | method_id``: the first four payload bytes of
a method frame read as one big-endian unsigned int, so dispatch is a single unpack and compare.
"""

from __future__ import annotations

import struct

from ferrymq import limits
from ferrymq.errors import FrameError

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_HEADER_SIZE = 7  # type + channel + size
HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

FRAME_OVERHEAD_BYTES = limits.FRAME_OVERHEAD_BYTES  # type, channel, size, end octet
# RabbitMQ accepts payloads up to frame_max itself (not frame_max - 8): "quite a few clients get
# it wrong - off-by 1 or 8". We allow the same slack so those clients work here too.
FRAME_SIZE_FUDGE_BYTES = 8


def max_payload(frame_max: int) -> int:
    """The largest payload accepted in a frame under ``frame_max``, slack included."""
    return frame_max - FRAME_OVERHEAD_BYTES + FRAME_SIZE_FUDGE_BYTES


# Incomplete input is at most one frame, so the input bound is what limits.py says it is.
assert max_payload(limits.FRAME_MAX_BYTES) + FRAME_OVERHEAD_BYTES == limits.INPUT_BUFFER_MAX_BYTES

FRAME_HEAD = struct.Struct(">BHI")
METHOD_ID = struct.Struct(">I")
CONTENT_HEADER_HEAD = struct.Struct(">HHQ")  # class id, weight, body size; the properties follow

BASIC_CLASS = 60


def method_id(class_id: int, method: int) -> int:
    return (class_id << 16) | method


def split_method_id(cm: int) -> tuple[int, int]:
    return cm >> 16, cm & 0xFFFF


CONNECTION_START = method_id(10, 10)
CONNECTION_START_OK = method_id(10, 11)
CONNECTION_SECURE_OK = method_id(10, 21)
CONNECTION_TUNE_OK = method_id(10, 31)
CONNECTION_OPEN = method_id(10, 40)
CONNECTION_CLOSE = method_id(10, 50)
CONNECTION_CLOSE_OK = method_id(10, 51)
CONNECTION_UPDATE_SECRET = method_id(10, 70)

CHANNEL_OPEN = method_id(20, 10)
CHANNEL_FLOW = method_id(20, 20)
CHANNEL_CLOSE = method_id(20, 40)
CHANNEL_CLOSE_OK = method_id(20, 41)

BASIC_PUBLISH = method_id(60, 40)
BASIC_DELIVER = method_id(60, 60)
BASIC_ACK = method_id(60, 80)
BASIC_REJECT = method_id(60, 90)
BASIC_NACK = method_id(60, 120)

# Channel methods a client may send that the broker answers (handler.on_method). Everything else
# pamqp knows on a channel is either handled by the codec itself or a server-to-client method,
# which RabbitMQ refuses with 503 "unimplemented method".
DELEGATED_METHODS = frozenset((
    method_id(40, 10), method_id(40, 20), method_id(40, 30), method_id(40, 40),  # exchange.*
    method_id(50, 10), method_id(50, 20), method_id(50, 30), method_id(50, 40),  # queue.*
    method_id(50, 50),
    method_id(60, 10), method_id(60, 20), method_id(60, 30), method_id(60, 70),  # basic.qos,
    method_id(60, 100), method_id(60, 110),  # consume, cancel, get, recover-async, recover
    method_id(85, 10),  # confirm.select
    method_id(90, 10), method_id(90, 20), method_id(90, 30),  # tx.select, commit, rollback
))


class LostSync(FrameError):
    """A framing error after which the byte stream cannot be trusted (oversized frame, bad end
    octet, input overflow): the close is sent and the connection dropped without awaiting
    close-ok, as RabbitMQ's fatal_frame_error does."""


def frame(frame_type: int, channel: int, payload: bytes) -> bytes:
    return FRAME_HEAD.pack(frame_type, channel, len(payload)) + payload + FRAME_END_BYTE


def snippet(payload: bytes) -> str:
    """The first octets of a bad frame, for error texts (RabbitMQ shows up to 16)."""
    part = payload[:16]
    which = "all" if len(payload) <= 16 else "first 16"
    return f"{which} octets = {part!r}"
