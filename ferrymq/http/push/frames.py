"""What a browser receives: one JSON text (UTF-8 bytes) per frame (a WebSocket message, an SSE data line).

``{"type": "message", "exchange", "routing_key", "body", "encoding": "text" | "base64",
"properties": {...}}`` — the body as text when it is UTF-8, else base64; only the properties the
publisher set. ``{"type": "subscribed", "queue", ...}`` opens a stream, ``{"type": "lagged",
"skipped": N}`` says N messages were dropped because the browser read too slowly, and
``{"type": "closed", "reason"}`` ends it when the broker ends the subscription.

A message fanned out to many browsers is encoded once: the last few encodings are kept by message.
"""

from __future__ import annotations

import base64
import datetime
import decimal
import json
from dataclasses import fields
from typing import Any

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties

_PROPERTY_NAMES = tuple(f.name for f in fields(Properties))
CACHE_MAX = 256  # encodings kept: one per message of the last loop turns, for every subscriber
_cache: dict[int, tuple[Message, bytes]] = {}


def _encode(data: dict[str, Any]) -> bytes:
    return _JSON(data).encode()


def message(msg: Message) -> bytes:
    """The message's frame, encoded once for every subscriber it is fanned out to."""
    hit = _cache.get(id(msg))
    if hit is not None and hit[0] is msg:
        return hit[1]
    text = _encode(_message_fields(msg))
    if len(_cache) >= CACHE_MAX:
        _cache.clear()
    _cache[id(msg)] = (msg, text)  # the message is held, so its id cannot be reused meanwhile
    return text


def _message_fields(msg: Message) -> dict[str, Any]:
    body, encoding = _body(msg.body)
    props = msg.props
    present = {name: getattr(props, name) for name in _PROPERTY_NAMES}
    return {"type": "message", "exchange": msg.exchange, "routing_key": msg.routing_key,
            "body": body, "encoding": encoding,
            "properties": {k: v for k, v in present.items() if v is not None}}


def _body(raw: bytes) -> tuple[str, str]:
    try:
        return bytes(raw).decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64"


def _jsonable(value: Any) -> Any:
    """AMQP table values JSON has no type for: bytes as text (or base64), the rest as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return _body(bytes(value))[0]
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return str(value)


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_jsonable).encode


def subscribed(queue: str, exchange: str, key: str, vhost: str) -> bytes:
    return _encode({"type": "subscribed", "queue": queue, "exchange": exchange, "key": key,
                    "vhost": vhost})


def lagged(skipped: int) -> bytes:
    return _encode({"type": "lagged", "skipped": skipped})


def closed(reason: str) -> bytes:
    return _encode({"type": "closed", "reason": reason})
