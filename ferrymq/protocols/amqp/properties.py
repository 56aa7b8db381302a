"""Basic properties: the content-header property section <-> ``Properties``.

Hand-written because it runs for every publish that carries properties; field tables (headers)
go through pamqp's table codec, which is fine since only messages with headers pay for it.
"""

from __future__ import annotations

import struct
from datetime import datetime

from pamqp import decode, encode

from ferrymq.core.properties import EMPTY_PROPERTIES, PROPERTY_FIELDS, Properties
from ferrymq.errors import SyntaxError_

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def decode_properties(buf: bytes | bytearray, pos: int, end: int) -> Properties:
    """Decode flags + values in ``buf[pos:end]``; malformed input is a 502 SYNTAX_ERROR."""
    try:
        return _decode(buf, pos, end)
    except (IndexError, struct.error, ValueError, UnicodeDecodeError) as exc:
        raise SyntaxError_(f"malformed content header properties: {exc}") from None


def _decode(buf: bytes | bytearray, pos: int, end: int) -> Properties:
    (flags,) = _U16.unpack_from(buf, pos)
    if not flags:
        return EMPTY_PROPERTIES
    pos += 2
    props = Properties()
    for attr, flag, kind in PROPERTY_FIELDS:
        if not flags & flag:
            continue
        if kind == "s":
            n = buf[pos]
            value: object = bytes(buf[pos + 1:pos + 1 + n]).decode("utf-8")
            pos += 1 + n
        elif kind == "o":
            value = buf[pos]
            pos += 1
        elif kind == "T":
            (value,) = _U64.unpack_from(buf, pos)
            pos += 8
        else:
            (n,) = _U32.unpack_from(buf, pos)
            _, value = decode.field_table(bytes(buf[pos:pos + 4 + n]))
            pos += 4 + n
        setattr(props, attr, value)
    if pos > end:
        raise ValueError("properties overrun the frame")
    return props


def encode_properties(props: Properties) -> bytes:
    if props is EMPTY_PROPERTIES:
        return b"\x00\x00"
    flags = 0
    parts: list[bytes] = []
    for attr, flag, kind in PROPERTY_FIELDS:
        value = getattr(props, attr)
        if value is None:
            continue
        flags |= flag
        if kind == "s":
            raw = str(value).encode()
            parts.append(bytes((len(raw),)) + raw)
        elif kind == "o":
            parts.append(bytes((int(value) & 0xFF,)))
        elif kind == "T":
            seconds = int(value.timestamp()) if isinstance(value, datetime) else int(value)
            parts.append(_U64.pack(seconds))
        else:
            parts.append(encode.field_table(value))
    return _U16.pack(flags) + b"".join(parts)
