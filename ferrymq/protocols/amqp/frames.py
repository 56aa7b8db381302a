"""AMQP 0-9-1 framing constants: every frame is type(1) channel(2) size(4) payload end(1)."""

from __future__ import annotations

import struct

PROTOCOL_HEADER = b"AMQP\x00\x00\x09\x01"
FRAME_METHOD = 1
FRAME_HEADER = 2
FRAME_BODY = 3
FRAME_HEARTBEAT = 8
FRAME_END = 0xCE
FRAME_END_BYTE = b"\xce"
FRAME_HEADER_SIZE = 7  # type + channel + size

HEARTBEAT_FRAME = b"\x08\x00\x00\x00\x00\x00\x00\xce"

FRAME_HEAD = struct.Struct(">BHI")
CLASS_METHOD = struct.Struct(">HH")

# (class_id, method_id) of the methods the hot path handles without pamqp.
BASIC = 60
BASIC_PUBLISH = (60 << 16) | 40
BASIC_ACK = (60 << 16) | 80
BASIC_REJECT = (60 << 16) | 90
BASIC_NACK = (60 << 16) | 120
