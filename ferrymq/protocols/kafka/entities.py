"""kio adapter for the non-hot APIs: decode a request body into kio's entity, and build a response
entity of the negotiated version from plain Python values.

Why an adapter: handlers describe a response once, as dicts with the fields of the newest version
(ints in ms for durations, ints for error codes); ``build`` keeps the fields the negotiated version
has, fills the rest with their schema defaults, and converts values to kio's phantom types. One
handler then answers every version.
"""

from __future__ import annotations

import datetime
import io
import uuid
from dataclasses import MISSING, Field, fields, is_dataclass
from functools import cache
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from kio.index import load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.serial import entity_reader, entity_writer

from ferrymq.protocols.kafka import array_bounds
from ferrymq.protocols.kafka.errors import KafkaProtocolError


@cache
def _reader(api_key: int, version: int) -> Any:
    return entity_reader(load_request_schema(api_key, version))


@cache
def _writer(api_key: int, version: int) -> tuple[type, Any]:
    cls = load_response_schema(api_key, version)
    return cls, entity_writer(cls)


def decode_request(api_key: int, version: int, body: bytes | memoryview) -> Any:
    """The request entity; any decoding failure is a protocol error (closes the connection)."""
    array_bounds.check(load_request_schema(api_key, version), body)  # before kio reserves memory
    try:
        entity, _size = _reader(api_key, version)(body, 0)
    except KafkaProtocolError:
        raise
    except Exception as exc:  # kio raises assorted errors on garbage: translate once, here
        raise KafkaProtocolError(f"undecodable request {api_key} v{version}: {exc}") from exc
    return entity


def encode_response(api_key: int, version: int, values: dict[str, Any]) -> bytes:
    cls, write = _writer(api_key, version)
    buf = io.BytesIO()
    write(buf, build(cls, values))
    return buf.getvalue()


def ms(value: Any) -> int:
    """A kio duration (timedelta) or timestamp as integer milliseconds."""
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def build(cls: type, values: dict[str, Any]) -> Any:
    """An instance of the kio dataclass ``cls`` from a dict (missing fields take their defaults)."""
    kwargs: dict[str, Any] = {}
    for f in _fields(cls):
        if f.name in values:
            kwargs[f.name] = _convert(f, values[f.name])
        elif f.default is MISSING and f.default_factory is MISSING:
            kwargs[f.name] = _convert(f, _zero(f))
    return cls(**kwargs)


@cache
def _fields(cls: type) -> tuple[Field[Any], ...]:
    return tuple(f for f in fields(cls) if f.init)  # type: ignore[arg-type]


def _unwrap(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (UnionType, Union):
        args = [a for a in get_args(tp) if a is not NoneType]
        return args[0], True
    return tp, False


def _convert(f: Field[Any], value: Any) -> Any:
    tp, _optional = _unwrap(f.type)
    if value is None:
        return None
    if get_origin(tp) is tuple:
        inner, _ = _unwrap(get_args(tp)[0])
        if is_dataclass(inner):
            return tuple(v if isinstance(v, inner) else build(inner, v)  # type: ignore[arg-type]
                         for v in value)
        return tuple(_primitive(f.metadata.get("kafka_type", ""), inner, v) for v in value)
    if is_dataclass(tp):
        return value if isinstance(value, tp) else build(tp, value)  # type: ignore[arg-type]
    return _primitive(f.metadata.get("kafka_type", ""), tp, value)


def _primitive(kafka_type: str, tp: Any, value: Any) -> Any:
    if kafka_type == "error_code":
        return ErrorCode(int(value))
    if kafka_type.startswith("timedelta"):
        return value if isinstance(value, datetime.timedelta) else datetime.timedelta(milliseconds=value)
    if kafka_type == "datetime_i64":
        if isinstance(value, datetime.datetime):
            return value
        return datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
    if kafka_type in ("bool", "bytes", "records", "uuid", "float64"):
        return value
    return tp(value)


def _zero(f: Field[Any]) -> Any:
    tp, optional = _unwrap(f.type)
    kafka_type = f.metadata.get("kafka_type", "")
    if get_origin(tp) is tuple:
        return ()
    if optional:
        return None
    if kafka_type in ("string",):
        return ""
    if kafka_type in ("bytes", "records"):
        return b""
    if kafka_type == "bool":
        return False
    if kafka_type == "uuid":
        return uuid.UUID(int=0)
    if is_dataclass(tp):
        return {}
    return 0
