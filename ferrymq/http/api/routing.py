"""The routing explainer: POST /api/ferrymq/route/{vhost}/{exchange}.

Body ``{"routing_key": str, "headers": {...}, "properties": {...}}``; the answer says, step by step,
which bindings of which exchanges matched and why, where the message would land (queues, streams),
whether the alternate exchange took it, and where each reached queue dead-letters. It runs the
publish path's own routing (``ferrymq.core.explain``); nothing is published.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq.core.explain import explain_publish
from ferrymq.http.dashboard.actions import vhost_of
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, ok, read_json

routes = web.RouteTableDef()


@routes.post("/api/ferrymq/route/{vhost}/{exchange}")
async def route(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    vhost = vhost_of(plane, request.match_info["vhost"])
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    key = body.get("routing_key", "")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise bad_request("'properties' must be an object")
    headers = body.get("headers", props.get("headers"))
    if not isinstance(key, str):
        raise bad_request("'routing_key' must be a string")
    if headers is not None and not isinstance(headers, dict):
        raise bad_request("'headers' must be an object")
    return ok(explain_publish(vhost, request.match_info["exchange"], key, headers or None))
