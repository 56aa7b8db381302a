"""/api/policies: PUT/GET/DELETE, applied live to matching queues and exchanges (ferrymq.core.policy).

As RabbitMQ 3.10: PUT creates (201) or updates (204); a bad body is a 400 with RabbitMQ's
"Validation failed" reason; an unknown vhost or policy is a 404.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq.core.policy import PolicyError, make_policy
from ferrymq.core.vhost import VHost
from ferrymq.http import listing
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, no_content, not_found, ok, read_json

routes = web.RouteTableDef()


def _vhost(request: web.Request) -> VHost:
    vhost = request.app[PLANE].broker.vhosts.get(request.match_info["vhost"])
    if vhost is None:
        raise not_found()
    return vhost


@routes.get("/api/policies")
async def list_all(request: web.Request) -> web.Response:
    items = [p.as_json() for v in request.app[PLANE].broker.vhosts.values()
             for p in v.policies.values()]
    return ok(listing.apply(items, request.query))


@routes.get("/api/policies/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    items = [p.as_json() for p in _vhost(request).policies.values()]
    return ok(listing.apply(items, request.query))


@routes.get("/api/policies/{vhost}/{name}")
async def get_one(request: web.Request) -> web.Response:
    policy = _vhost(request).policies.get(request.match_info["name"])
    if policy is None:
        raise not_found()
    return ok(policy.as_json())


@routes.put("/api/policies/{vhost}/{name}")
async def put(request: web.Request) -> web.Response:
    vhost = _vhost(request)
    body = await read_json(request)
    try:
        policy = make_policy(vhost.name, request.match_info["name"], body)
    except PolicyError as exc:
        raise bad_request(str(exc)) from None
    created = vhost.set_policy(policy)
    request.app[PLANE].end_turn()
    return web.Response(status=201) if created else no_content()


@routes.delete("/api/policies/{vhost}/{name}")
async def delete(request: web.Request) -> web.Response:
    if not _vhost(request).clear_policy(request.match_info["name"]):
        raise not_found()
    request.app[PLANE].end_turn()
    return no_content()
