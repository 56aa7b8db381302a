"""Basic properties: the content-header property section (flags, then values) <-> ``Properties``.

Hand-written because it runs for every publish that carries properties. Decoding follows a plan
per flags word (which fields are present, in wire order), built once and cached: there are at most
2**14 of them and a publisher uses one or two. Header-less property sections are also interned,
so the thousands of messages a publisher sends with the same properties share one ``bytes`` and
one ``Properties`` (treated as immutable everywhere: the core changes properties with
``with_changes``, never in place). Sections with headers are decoded each time, since a headers
dict is mutable.

Strings use UTF-8 with ``surrogateescape``, so property bytes that are not UTF-8 (RabbitMQ does not
check them) survive a decode/encode round trip unchanged.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

from ferrymq import limits
from ferrymq.core.properties import EMPTY_PROPERTIES, PROPERTY_FIELDS, Properties
from ferrymq.errors import SyntaxError_
from ferrymq.protocols.amqp.tables import TableError, decode_table, encode_table

EMPTY_RAW_PROPERTIES = b"\x00\x00"
# The low two bits are the continuation flag and padding: the basic class has 14 properties, so
# RabbitMQ ignores them, and so do we.
_FLAGS_MASK = 0xFFFC
_INTERN_MAX = 1024  # distinct header-less property sections kept; the cache resets when full

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")

_plans: dict[int, tuple[tuple[int, str], ...]] = {}
# Read directly by the connection's hot loop (a dict lookup saves a call per message).
INTERNED_PROPERTIES: dict[bytes, tuple[bytes, Properties]] = {EMPTY_RAW_PROPERTIES: (
    EMPTY_RAW_PROPERTIES, EMPTY_PROPERTIES)}


def intern_properties(raw: bytes) -> tuple[bytes, Properties]:
    """(raw, props) for a property section, both shared with earlier identical header-less ones.
    Malformed input raises SyntaxError_ (502)."""
    hit = INTERNED_PROPERTIES.get(raw)
    if hit is not None:
        return hit
    props = decode_properties(raw)
    if props.headers is None:
        if len(INTERNED_PROPERTIES) >= _INTERN_MAX:
            INTERNED_PROPERTIES.clear()
            INTERNED_PROPERTIES[EMPTY_RAW_PROPERTIES] = (EMPTY_RAW_PROPERTIES, EMPTY_PROPERTIES)
        INTERNED_PROPERTIES[raw] = (raw, props)
    return raw, props


def decode_properties(raw: bytes) -> Properties:
    """Decode a whole property section; malformed input is a 502 SYNTAX_ERROR."""
    try:
        return _decode(raw)
    except (IndexError, struct.error, TableError) as exc:
        raise SyntaxError_(f"malformed content header properties: {exc}") from None


def _decode(raw: bytes) -> Properties:
    flags = ((raw[0] << 8) | raw[1]) & _FLAGS_MASK
    if not flags:
        if len(raw) != 2:
            raise TableError("bytes after the property flags")
        return EMPTY_PROPERTIES
    plan = _plans.get(flags) or _plan(flags)
    values: list[Any] = [None] * 14  # one slot per property, typed by its flag bit
    pos = 2
    for index, kind in plan:
        if kind == "s":
            end = pos + 1 + raw[pos]
            if end > len(raw):
                raise TableError("truncated short string property")
            values[index] = raw[pos + 1:end].decode("utf-8", "surrogateescape")
            pos = end
        elif kind == "o":
            values[index] = raw[pos]
            pos += 1
        elif kind == "T":
            values[index] = _U64.unpack_from(raw, pos)[0]
            pos += 8
        else:
            end = pos + 4 + _U32.unpack_from(raw, pos)[0]
            if end > len(raw):
                raise TableError("headers overrun the content header")
            values[index] = decode_table(raw, pos + 4, end)
            pos = end
    if pos != len(raw):
        raise TableError("property values do not fill the content header")
    return Properties(*values)


def _plan(flags: int) -> tuple[tuple[int, str], ...]:
    plan = tuple((i, kind) for i, (_, flag, kind) in enumerate(PROPERTY_FIELDS) if flags & flag)
    _plans[flags] = plan
    return plan


def encode_properties(props: Properties) -> bytes:
    """Flags then values. Raises ValueError for values that do not fit their wire type."""
    if props is EMPTY_PROPERTIES:
        return EMPTY_RAW_PROPERTIES
    flags = 0
    parts: list[bytes] = [b""]
    for attr, flag, kind in PROPERTY_FIELDS:
        value = getattr(props, attr)
        if value is None:
            continue
        flags |= flag
        parts.append(_encode_value(attr, kind, value))
    parts[0] = bytes((flags >> 8, flags & 0xFF))
    return b"".join(parts)


def _encode_value(attr: str, kind: str, value: object) -> bytes:
    if kind == "s":
        raw = str(value).encode("utf-8", "surrogateescape")
        if len(raw) > limits.SHORTSTR_MAX_BYTES:
            raise ValueError(f"property {attr} is longer than 255 bytes")
        return bytes((len(raw),)) + raw
    if kind == "o":
        return bytes((int(value),))  # type: ignore[call-overload]
    if kind == "T":
        if isinstance(value, datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
            value = int(aware.timestamp())
        return _U64.pack(int(value))  # type: ignore[call-overload]
    return encode_table(value)  # type: ignore[arg-type]
