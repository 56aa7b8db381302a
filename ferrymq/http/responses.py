"""JSON in and out, and RabbitMQ's error bodies: ``{"error": ..., "reason": ...}``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from ferrymq import limits

JSON = "application/json"


def ok(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type=JSON)


SLICE = 500  # list items encoded between two yields to the loop


async def ok_list(data: Any) -> web.Response:
    """``ok`` for answers that may hold thousands of objects: a list is encoded a slice at a time
    with a yield between slices, so a 10 MB answer never holds the loop for its whole encoding."""
    if not isinstance(data, list) or len(data) <= SLICE:
        return ok(data)
    parts: list[bytes] = []
    for start in range(0, len(data), SLICE):
        if start:
            await asyncio.sleep(0)
        parts.append(_ENCODE(data[start:start + SLICE]).encode()[1:-1])
    return web.Response(body=b"".join([b"[", b",".join(parts), b"]"]), content_type=JSON)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def no_content() -> web.Response:
    return web.Response(status=204)


def error(status: int, error_: str, reason: str) -> web.HTTPException:
    """An exception to raise: aiohttp sends it as the response (RabbitMQ's body shape)."""
    body = json.dumps({"error": error_, "reason": reason})
    cls = web.HTTPException
    for sub in _STATUS_CLASSES:
        if sub.status_code == status:
            cls = sub
            break
    exc = cls(text=body, content_type=JSON)
    exc.set_status(status)
    return exc


def not_found() -> web.HTTPException:
    return error(404, "Object Not Found", "Not Found")


def bad_request(reason: str) -> web.HTTPException:
    return error(400, "bad_request", reason)


async def read_json(request: web.Request) -> Any:
    """The request's JSON body ({} when empty); malformed JSON is a 400 with the parser's reason."""
    return decode_json_body(await request.read())


def decode_json_body(raw: bytes) -> Any:
    """read_json's decoding, apart from the request (the fuzz target ``http-json`` calls it)."""
    if len(raw) > limits.HTTP_BODY_MAX_BYTES:
        raise error(413, "bad_request", f"body larger than {limits.HTTP_BODY_MAX_BYTES} bytes")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"malformed JSON: {exc}") from None


_STATUS_CLASSES: tuple[type[web.HTTPException], ...] = (
    web.HTTPBadRequest, web.HTTPUnauthorized, web.HTTPForbidden, web.HTTPNotFound,
    web.HTTPMethodNotAllowed, web.HTTPConflict, web.HTTPRequestEntityTooLarge,
    web.HTTPInternalServerError, web.HTTPServiceUnavailable,
)
