"""The rare methods (everything but the hot path): method frame payload <-> pamqp method objects.

pamqp's classes describe every method (argument names and wire types, in order) and stay the
objects the handler sees, but the byte work is done here, by one loop over that description:

- decoding is linear and strict, as RabbitMQ's is: pamqp re-slices the remaining input for every
  argument and every table entry (quadratic: a 128 KiB queue.declare could stall the loop for a
  second), ignores trailing bytes, and recurses into tables without bound;
- encoding does not validate names against pamqp's pattern (``[a-zA-Z0-9-_.:@#,/+ ]``): RabbitMQ
  accepts any UTF-8 name up to 255 bytes, and a declare-ok for ``café`` must not crash the broker.

Malformed input raises MethodDecodeError; the connection answers 501 FRAME_ERROR "cannot decode",
as RabbitMQ does.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands
from pamqp.base import Frame

from ferrymq import limits
from ferrymq.protocols.amqp.tables import TableError, decode_table, encode_table

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_INTS = {"octet": struct.Struct(">B"), "short": _U16, "long": _U32, "longlong": _U64,
         "timestamp": _U64}

# Per method class: ((attribute, wire type), ...) in wire order, computed once.
_LAYOUTS: dict[type[Frame], tuple[tuple[str, str], ...]] = {
    cls: tuple((attr, cls.amqp_type(attr)) for attr in cls.__slots__)  # type: ignore[attr-defined]
    for cls in commands.INDEX_MAPPING.values()
}


class MethodDecodeError(ValueError):
    """The arguments of a method frame do not decode."""


def method_class(cm: int) -> type[Frame] | None:
    """The pamqp class for a ``class_id << 16 | method_id`` number, None if unknown."""
    return commands.INDEX_MAPPING.get(cm)


def decode_method(cls: type[Frame], data: bytes, pos: int, end: int) -> Frame:
    """Decode the arguments in ``data[pos:end]`` (after class and method ids) into ``cls``."""
    try:
        return _decode(cls, data, pos, end)
    except (IndexError, struct.error, UnicodeDecodeError, TableError) as exc:
        raise MethodDecodeError(f"{cls.name}: {exc}") from None


def _decode(cls: type[Frame], data: bytes, pos: int, end: int) -> Frame:
    method = cls.__new__(cls)  # no __init__: pamqp's validation is not RabbitMQ's
    bits = bit = 0
    in_bits = False
    for attr, kind in _LAYOUTS[cls]:
        if kind == "bit":
            if not in_bits or bit == 8:
                _check(pos + 1, end)
                bits, bit, in_bits = data[pos], 0, True
                pos += 1
            setattr(method, attr, bool(bits >> bit & 1))
            bit += 1
            continue
        in_bits = False
        value, pos = _decode_value(kind, data, pos, end)
        setattr(method, attr, value)
    if pos != end:
        raise MethodDecodeError(f"{cls.name}: {end - pos} octets after the last argument")
    return method


def _decode_value(kind: str, data: bytes, pos: int, end: int) -> tuple[Any, int]:
    if kind == "shortstr":
        after = pos + 1 + data[pos]
        _check(after, end)
        return data[pos + 1:after].decode(), after  # RabbitMQ: "Malformed UTF-8 in shortstr"
    if kind in _INTS:
        fmt = _INTS[kind]
        _check(pos + fmt.size, end)
        return fmt.unpack_from(data, pos)[0], pos + fmt.size
    after = pos + 4 + _U32.unpack_from(data, pos)[0]
    _check(after, end)
    if kind == "table":
        return decode_table(data, pos + 4, after), after
    raw = data[pos + 4:after]  # longstr: text when it is UTF-8, as pamqp gives it
    try:
        return raw.decode(), after
    except UnicodeDecodeError:
        return raw, after


def _check(after: int, end: int) -> None:
    if after > end:
        raise MethodDecodeError("argument overruns the frame")


def encode_method(method: Frame) -> bytes:
    """Class and method ids then the arguments: a method frame's payload."""
    parts = [_U32.pack(method.index)]
    bits = bit = 0
    in_bits = False
    for attr, kind in _LAYOUTS[type(method)]:
        value = getattr(method, attr, None)
        if kind == "bit":
            if in_bits and bit == 8:
                parts.append(bytes((bits,)))
                in_bits = False
            if not in_bits:
                bits, bit, in_bits = 0, 0, True
            bits |= (1 if value else 0) << bit
            bit += 1
            continue
        if in_bits:
            parts.append(bytes((bits,)))
            in_bits = False
        parts.append(_encode_value(kind, value))
    if in_bits:
        parts.append(bytes((bits,)))
    return b"".join(parts)


def _encode_value(kind: str, value: Any) -> bytes:
    if kind == "shortstr":
        raw = (value or "").encode("utf-8", "surrogateescape")
        if len(raw) > limits.SHORTSTR_MAX_BYTES:
            raise ValueError(f"short string longer than 255 bytes: {raw[:40]!r}...")
        return bytes((len(raw),)) + raw
    if kind in _INTS:
        return _INTS[kind].pack(value or 0)
    if kind == "table":
        return encode_table(value)
    raw = value.encode("utf-8", "surrogateescape") if isinstance(value, str) else bytes(value or b"")
    return _U32.pack(len(raw)) + raw
