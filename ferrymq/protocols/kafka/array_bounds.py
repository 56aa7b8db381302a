"""Array lengths checked against the bytes that remain, before kio reads a request.

Why: kio's native reader reserves room for an array's declared length before it reads one
element, so a 20-byte request declaring 2**31 (or, compact, 2**32) elements asks for 17-36 GB and
the allocator aborts the whole broker (found by ``python -m ferrymq.fuzz --target kafka-requests``).
Every element takes at least one byte, so a length above what remains is refused here as the
protocol error it is. The walk follows kio's own schema classes and reads only lengths; where it
cannot follow (a truncated field), it stops and leaves the verdict to kio.
"""

from __future__ import annotations

import struct
from dataclasses import fields, is_dataclass
from functools import cache
from typing import Any

from kio.serial._introspect import classify_field

from ferrymq.protocols.kafka.errors import KafkaProtocolError

_FIXED = {"bool": 1, "int8": 1, "int16": 2, "int32": 4, "int64": 8, "uint16": 2, "uint32": 4,
          "uint64": 8, "float64": 8, "uuid": 16, "timedelta_i32": 4, "timedelta_i64": 8,
          "datetime_i64": 8, "error_code": 2}
_I16, _I32 = struct.Struct(">h"), struct.Struct(">i")
Plan = tuple[tuple[str, bool, Any], ...]  # (kafka type, is array, nested entity class or None)


class _Lost(Exception):
    """The bytes end before the schema does: kio will say so itself."""


def check(entity: type, buf: bytes | memoryview) -> None:
    """Raise KafkaProtocolError if any array in ``buf`` (a request body) claims more elements than
    there are bytes left."""
    try:
        _entity(entity, buf, 0, len(buf), bool(getattr(entity, "__flexible__", False)))
    except _Lost:
        return


@cache
def _plan(entity: type) -> Plan:
    out = []
    for f in fields(entity):  # type: ignore[arg-type]
        kind = classify_field(f)
        nested = kind.type_ if is_dataclass(kind.type_) else None
        out.append((str(f.metadata.get("kafka_type", "")), kind.is_array, nested))
    return tuple(out)


def _entity(entity: type, buf: bytes | memoryview, pos: int, end: int, flexible: bool) -> int:
    for kafka_type, is_array, nested in _plan(entity):
        if is_array:
            n, pos = _length(buf, pos, end, flexible, _I32)
            if n > end - pos:
                raise KafkaProtocolError(f"array length {n} exceeds the {end - pos} bytes left")
            for _ in range(max(n, 0)):
                pos = _one(kafka_type, nested, buf, pos, end, flexible)
        else:
            pos = _one(kafka_type, nested, buf, pos, end, flexible)
    if flexible:
        pos = _skip_tagged(buf, pos, end)
    return pos


def _one(kafka_type: str, nested: Any, buf: bytes | memoryview, pos: int, end: int, flexible: bool) -> int:
    if nested is not None:
        return _entity(nested, buf, pos, end, flexible)
    size = _FIXED.get(kafka_type)
    if size is None:  # string (i16 / compact length) or bytes and records (i32 / compact length)
        n, pos = _length(buf, pos, end, flexible, _I16 if kafka_type == "string" else _I32)
        size = max(n, 0)
    if pos + size > end:
        raise _Lost
    return pos + size


def _length(buf: bytes | memoryview, pos: int, end: int, flexible: bool,
            classic: struct.Struct) -> tuple[int, int]:
    """A length (-1 for null) and the position after it: an unsigned varint plus one when flexible."""
    if flexible:
        n, pos = _uvarint(buf, pos, end)
        return n - 1, pos
    if pos + classic.size > end:
        raise _Lost
    return classic.unpack_from(buf, pos)[0], pos + classic.size


def _uvarint(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while pos < end and shift <= 63:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise _Lost


def _skip_tagged(buf: bytes | memoryview, pos: int, end: int) -> int:
    count, pos = _uvarint(buf, pos, end)
    for _ in range(count):
        _tag, pos = _uvarint(buf, pos, end)
        size, pos = _uvarint(buf, pos, end)
        pos += size
        if pos > end:
            raise _Lost
    return pos
