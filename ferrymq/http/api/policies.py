"""/api/policies and /api/operator-policies: PUT/GET/DELETE, applied live to matching queues and
exchanges (ferrymq.core.policy); one set of handlers serves both kinds.

As RabbitMQ 3.10: PUT creates (201) or updates (204); a bad body is a 400 with RabbitMQ's
"Validation failed" reason (an operator policy accepts only the operator keys, and its reason is not
HTML-escaped: RabbitMQ's handler passes it as a binary); an unknown vhost or
policy is a 404. Operator policies are stored as RabbitMQ stores them: runtime parameters.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from ferrymq.core.policy import Policy, PolicyError, make_policy
from ferrymq.core.vhost import VHost
from ferrymq.http import listing
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, no_content, not_found, ok, read_json

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Kind:
    path: str  # "/api/policies" or "/api/operator-policies"
    operator: bool

    def held(self, vhost: VHost) -> dict[str, Policy]:
        return vhost.operator_policies if self.operator else vhost.policies

    def set(self, vhost: VHost, policy: Policy) -> bool:
        return vhost.set_operator_policy(policy) if self.operator else vhost.set_policy(policy)

    def clear(self, vhost: VHost, name: str) -> bool:
        return vhost.clear_operator_policy(name) if self.operator else vhost.clear_policy(name)


KINDS = (Kind("/api/policies", False), Kind("/api/operator-policies", True))


def _vhost(request: web.Request) -> VHost:
    vhost = request.app[PLANE].broker.vhosts.get(request.match_info["vhost"])
    if vhost is None:
        raise not_found()
    return vhost


def _listing(kind: Kind) -> tuple[Handler, Handler, Handler]:
    async def list_all(request: web.Request) -> web.Response:
        items = [p.as_json() for v in request.app[PLANE].broker.vhosts.values()
                 for p in kind.held(v).values()]
        return ok(listing.apply(items, request.query))

    async def list_vhost(request: web.Request) -> web.Response:
        items = [p.as_json() for p in kind.held(_vhost(request)).values()]
        return ok(listing.apply(items, request.query))

    async def get_one(request: web.Request) -> web.Response:
        policy = kind.held(_vhost(request)).get(request.match_info["name"])
        if policy is None:
            raise not_found()
        return ok(policy.as_json())
    return list_all, list_vhost, get_one


def _changes(kind: Kind) -> tuple[Handler, Handler]:
    async def put(request: web.Request) -> web.Response:
        vhost = _vhost(request)
        body = await read_json(request)
        try:
            policy = make_policy(vhost.name, request.match_info["name"], body, operator=kind.operator)
        except PolicyError as exc:  # RabbitMQ escapes a policy's reason, not an operator policy's
            raise bad_request(html.unescape(str(exc)) if kind.operator else str(exc)) from None
        created = kind.set(vhost, policy)
        request.app[PLANE].end_turn()
        return web.Response(status=201) if created else no_content()

    async def delete(request: web.Request) -> web.Response:
        if not kind.clear(_vhost(request), request.match_info["name"]):
            raise not_found()
        request.app[PLANE].end_turn()
        return no_content()
    return put, delete


for _kind in KINDS:
    _all, _one_vhost, _one = _listing(_kind)
    _put, _delete = _changes(_kind)
    routes.get(_kind.path)(_all)
    routes.get(_kind.path + "/{vhost}")(_one_vhost)
    routes.get(_kind.path + "/{vhost}/{name}")(_one)
    routes.put(_kind.path + "/{vhost}/{name}")(_put)
    routes.delete(_kind.path + "/{vhost}/{name}")(_delete)
