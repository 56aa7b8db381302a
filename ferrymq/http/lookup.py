"""Path parameters to core objects, with RabbitMQ's 404 for anything unknown; body field checks."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.core.properties import Long
from ferrymq.core.queue import Queue
from ferrymq.core.vhost import Authorise, VHost
from ferrymq.http.auth import USER
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import bad_request, not_found, read_json

HTTP_CONNECTION = object()  # the connection the HTTP plane acts as (owns nothing exclusive)


def plane(request: web.Request) -> Plane:
    return request.app[PLANE]


def vhost(request: web.Request, key: str = "vhost") -> VHost:
    vh = plane(request).broker.vhosts.get(request.match_info[key])
    if vh is None:
        raise not_found()
    return vh


def queue(request: web.Request, vh: VHost, key: str = "name") -> Queue:
    q = vh.queues.get(request.match_info[key])
    if q is None:
        raise not_found()
    return q


def authorise(request: web.Request, vh: VHost) -> Authorise:
    """The caller's permission checks for a declare, made inside the declare where RabbitMQ makes
    them (ferrymq.core.permissions.Permissions.authoriser); a refusal is the 401 "Access refused."
    RabbitMQ's management API answers for these calls (ferrymq.http.server)."""
    return plane(request).broker.access.authoriser(request[USER], vh.name)


def flag(query: Any, key: str) -> bool:
    return str(query.get(key, "false")).lower() == "true"


async def body(request: web.Request) -> dict[str, Any]:
    """The JSON object a PUT/POST carries; anything else is RabbitMQ's 400 ``not_json``."""
    try:
        data = await read_json(request)
    except web.HTTPBadRequest:
        raise bad_request("not_json") from None
    if not isinstance(data, dict):
        raise bad_request("not_json")
    return data


def require(data: dict[str, Any], *keys: str) -> None:
    """RabbitMQ's missing-key 400: ``[{key_missing,write},{key_missing,read}]``."""
    missing = [k for k in keys if k not in data]
    if missing:
        raise bad_request("[" + ",".join(f"{{key_missing,{k}}}" for k in missing) + "]")


def arguments(data: dict[str, Any]) -> dict[str, Any]:
    """The body's x-arguments; JSON integers are longs, as RabbitMQ's management API reads them (so
    an error text names the type it names)."""
    args = data.get("arguments") or {}
    if not isinstance(args, dict):
        raise bad_request("arguments must be a JSON object")
    return {k: Long(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in args.items()}


def boolean(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)
