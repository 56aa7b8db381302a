"""AMQP field tables and arrays (message headers, x-arguments) <-> Python values.

Hand-written rather than pamqp's table codec because pamqp's is wrong for a broker that must pass
values through: it re-slices the remaining input for every value (quadratic on large tables),
recurses without a depth bound, reads timestamps above 2**32 as milliseconds, encodes Python
floats as 32-bit floats and cannot encode ``bytes``. Types follow RabbitMQ's parser
(rabbit_binary_parser): ``l`` and ``L`` are both signed 64-bit, ``D`` has an unsigned mantissa.

Decoded shapes match pamqp's where the core relies on them: longstr is ``str`` when it is valid
UTF-8 (else ``bytes``), byte arrays are ``bytes``, timestamps are UTC ``datetime`` (``int`` when out
of datetime's range), decimals are ``Decimal``, void is ``None``.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ferrymq import limits
from ferrymq.core.properties import Long

_U32 = struct.Struct(">I")
_SCALARS: dict[int, struct.Struct] = {
    ord("b"): struct.Struct(">b"), ord("B"): struct.Struct(">B"),
    ord("s"): struct.Struct(">h"), ord("u"): struct.Struct(">H"),
    ord("I"): struct.Struct(">i"), ord("i"): struct.Struct(">I"),
    ord("l"): struct.Struct(">q"), ord("L"): struct.Struct(">q"),
    ord("f"): struct.Struct(">f"), ord("d"): struct.Struct(">d"),
}
_LONG_TAGS = frozenset((ord("l"), ord("L")))
_DECIMAL = struct.Struct(">BI")
_TIMESTAMP = struct.Struct(">Q")
_INT32 = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_DOUBLE = struct.Struct(">d")


class TableError(ValueError):
    """A malformed field table (truncated, unknown type, too deep)."""


# --- decoding ------------------------------------------------------------------------------


def decode_table(buf: bytes, pos: int, end: int, depth: int = 0) -> dict[str, Any]:
    """Decode the table entries in ``buf[pos:end]`` (after the 4-byte length)."""
    if depth > limits.HEADERS_DEPTH_MAX:
        raise TableError("field table nested too deeply")
    table: dict[str, Any] = {}
    while pos < end:
        n = buf[pos]
        key_end = pos + 1 + n
        if key_end >= end:
            raise TableError("truncated field table key")
        key = buf[pos + 1:key_end].decode("utf-8", "surrogateescape")
        table[key], pos = _value(buf, key_end, end, depth)
    if pos != end:
        raise TableError("field table overruns its length")
    return table


def decode_array(buf: bytes, pos: int, end: int, depth: int = 0) -> list[Any]:
    if depth > limits.HEADERS_DEPTH_MAX:
        raise TableError("field array nested too deeply")
    items: list[Any] = []
    while pos < end:
        value, pos = _value(buf, pos, end, depth)
        items.append(value)
    if pos != end:
        raise TableError("field array overruns its length")
    return items


def _value(buf: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    """One tagged value at ``buf[pos]``: (value, position after it)."""
    tag = buf[pos]
    pos += 1
    scalar = _SCALARS.get(tag)
    if scalar is not None:
        after = pos + scalar.size
        if after > end:
            raise TableError("truncated field value")
        value = scalar.unpack_from(buf, pos)[0]
        return (Long(value) if tag in _LONG_TAGS else value), after
    if tag in _SIZED:
        if pos + 4 > end:
            raise TableError("truncated field value length")
        after = pos + 4 + _U32.unpack_from(buf, pos)[0]
        if after > end:
            raise TableError("field value overruns its table")
        return _SIZED[tag](buf, pos + 4, after, depth), after
    return _fixed(tag, buf, pos, end)


def _fixed(tag: int, buf: bytes, pos: int, end: int) -> tuple[Any, int]:
    if tag == 0x74:  # t
        if pos >= end:
            raise TableError("truncated boolean")
        return buf[pos] != 0, pos + 1
    if tag == 0x54:  # T
        if pos + 8 > end:
            raise TableError("truncated timestamp")
        return _timestamp(_TIMESTAMP.unpack_from(buf, pos)[0]), pos + 8
    if tag == 0x44:  # D
        if pos + 5 > end:
            raise TableError("truncated decimal")
        scale, digits = _DECIMAL.unpack_from(buf, pos)
        return Decimal(digits).scaleb(-scale), pos + 5
    if tag == 0x56:  # V
        return None, pos
    raise TableError(f"unknown field type {tag:#04x}")


def _longstr(buf: bytes, pos: int, end: int, depth: int) -> str | bytes:
    raw = buf[pos:end]
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return bytes(raw)


def _bytes(buf: bytes, pos: int, end: int, depth: int) -> bytes:
    return bytes(buf[pos:end])


def _table(buf: bytes, pos: int, end: int, depth: int) -> dict[str, Any]:
    return decode_table(buf, pos, end, depth + 1)


def _array(buf: bytes, pos: int, end: int, depth: int) -> list[Any]:
    return decode_array(buf, pos, end, depth + 1)


_SIZED = {ord("S"): _longstr, ord("x"): _bytes, ord("F"): _table, ord("A"): _array}


class FarTimestamp(int):
    """A timestamp beyond datetime's range, kept as its seconds (an unsigned 64-bit number) and
    written back as ``T``: re-encoding headers (dead-lettering) must not fail on what a client sent."""

    __slots__ = ()


def _timestamp(seconds: int) -> datetime | int:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return FarTimestamp(seconds)


# --- encoding ------------------------------------------------------------------------------


def encode_table(table: dict[str, Any] | None) -> bytes:
    """A field table with its 4-byte length prefix."""
    body = b"".join(_entries(table or {}, 0))
    return _U32.pack(len(body)) + body


def _entries(table: dict[str, Any], depth: int) -> list[bytes]:
    if depth > limits.HEADERS_DEPTH_MAX:
        raise TableError("field table nested too deeply")
    out: list[bytes] = []
    for key, value in table.items():
        raw = key.encode("utf-8", "surrogateescape")
        if len(raw) > limits.SHORTSTR_MAX_BYTES:
            raise TableError(f"field table key longer than 255 bytes: {key[:40]!r}")
        out.append(bytes((len(raw),)) + raw)
        out.append(encode_value(value, depth))
    return out


def encode_value(value: Any, depth: int = 0) -> bytes:
    """One tagged value, choosing the type as RabbitMQ's own encoder would (a ``Long`` stays ``l``)."""
    if isinstance(value, bool):
        return b"t\x01" if value else b"t\x00"
    if isinstance(value, int):
        return _integer(value)
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogateescape")
        return b"S" + _U32.pack(len(raw)) + raw
    if isinstance(value, bytes | bytearray | memoryview):
        return b"x" + _U32.pack(len(value)) + bytes(value)
    if isinstance(value, float):
        return b"d" + _DOUBLE.pack(value)
    if isinstance(value, dict):
        body = b"".join(_entries(value, depth + 1))
        return b"F" + _U32.pack(len(body)) + body
    if isinstance(value, list | tuple):
        body = b"".join(encode_value(v, depth + 1) for v in value)
        return b"A" + _U32.pack(len(body)) + body
    return _other(value)


def _integer(value: int) -> bytes:
    if isinstance(value, FarTimestamp):
        return b"T" + _TIMESTAMP.pack(value)
    if -(2**31) <= value < 2**31 and not isinstance(value, Long):
        return b"I" + _INT32.pack(value)
    if -(2**63) <= value < 2**63:
        return b"l" + _INT64.pack(value)
    raise TableError(f"integer out of range for a field table: {value}")


def _other(value: Any) -> bytes:
    if value is None:
        return b"V"
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return b"T" + _TIMESTAMP.pack(int(aware.timestamp()))
    if isinstance(value, Decimal):
        return b"D" + _decimal(value)
    raise TableError(f"cannot encode {type(value).__name__} in a field table")


def _decimal(value: Decimal) -> bytes:
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise TableError(f"cannot encode decimal {value}")
    mantissa = int("".join(map(str, digits)) or "0") * (10 ** max(exponent, 0))
    scale = max(-exponent, 0)
    if sign and mantissa:
        raise TableError(f"AMQP decimals are unsigned (RabbitMQ reads them so): {value}")
    if not (scale <= 255 and mantissa < 2**32):
        raise TableError(f"decimal out of range for a field table: {value}")
    return _DECIMAL.pack(scale, mantissa)
