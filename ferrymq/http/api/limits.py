"""RabbitMQ's ``/api/vhost-limits`` and ``/api/user-limits``: read, set one limit, clear one limit.

A limit set here is enforced at once (ferrymq.core.vhost_limits) and stored in the topology store, so
it survives a restart, as ``rabbitmqctl set_vhost_limits`` / ``set_user_limits`` do.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.core.vhost_limits import LimitError
from ferrymq.http import lookup
from ferrymq.http.plane import Plane
from ferrymq.http.responses import bad_request, no_content, not_found, ok

routes = web.RouteTableDef()

_OWNER = {"vhost": "vhost", "user": "user"}  # the JSON key naming the object in a listing


def _rows(plane: Plane, scope: str, name: str | None = None) -> list[dict[str, Any]]:
    by_name = plane.broker.limits.by_scope[scope]
    names = [name] if name is not None else sorted(by_name)
    return [{_OWNER[scope]: n, "value": dict(by_name[n])} for n in names if by_name.get(n)]


def _exists(plane: Plane, scope: str, name: str) -> None:
    broker = plane.broker
    if name not in (broker.vhosts if scope == "vhost" else broker.users):
        raise not_found()


def _store(plane: Plane, scope: str, name: str) -> None:
    if plane.durability is not None:
        plane.durability.metadata.limits_set(scope, name, plane.broker.limits.of(scope, name))


async def _put(request: web.Request, scope: str) -> web.Response:
    plane, name = lookup.plane(request), request.match_info["name"]
    _exists(plane, scope, name)
    data = await lookup.body(request)
    if "value" not in data:
        raise bad_request("[{key_missing,value}]")
    try:
        plane.broker.limits.put(scope, name, {request.match_info["limit"]: data["value"]})
    except LimitError as exc:
        raise bad_request(str(exc)) from None
    _store(plane, scope, name)
    return no_content()


def _delete(request: web.Request, scope: str) -> web.Response:
    plane, name = lookup.plane(request), request.match_info["name"]
    _exists(plane, scope, name)
    if plane.broker.limits.clear(scope, name, request.match_info["limit"]):  # none set: 204 too
        _store(plane, scope, name)
    return no_content()


def _scope_routes(scope: str) -> None:
    """The four routes of one scope: /api/vhost-limits/... or /api/user-limits/..."""
    base = f"/api/{scope}-limits"

    async def listing(request: web.Request) -> web.Response:
        return ok(_rows(lookup.plane(request), scope))

    async def of_one(request: web.Request) -> web.Response:
        plane, name = lookup.plane(request), request.match_info["name"]
        _exists(plane, scope, name)
        return ok(_rows(plane, scope, name))

    async def put(request: web.Request) -> web.Response:
        return await _put(request, scope)

    async def delete(request: web.Request) -> web.Response:
        return _delete(request, scope)

    routes.get(base)(listing)
    routes.get(base + "/{name}")(of_one)
    routes.put(base + "/{name}/{limit}")(put)
    routes.delete(base + "/{name}/{limit}")(delete)


_scope_routes("vhost")
_scope_routes("user")


# --- definitions (RabbitMQ 3.10's format): user limits in users[].limits, vhost limits as the runtime
# parameter {"component": "vhost-limits", "name": "limits", "vhost": v, "value": {...}} ----------------

def exported_parameters(plane: Plane) -> list[dict[str, Any]]:
    return [{"value": dict(values), "vhost": name, "component": "vhost-limits", "name": "limits"}
            for name, values in sorted(plane.broker.limits.by_scope["vhost"].items())]


def import_limits(plane: Plane, body: dict[str, Any]) -> None:
    """Apply the limits a definitions file carries (after its users and vhosts exist)."""
    wanted = [("user", u.get("name"), u.get("limits")) for u in body.get("users") or []
              if isinstance(u, dict)]
    wanted += [("vhost", p.get("vhost", "/"), p.get("value")) for p in body.get("parameters") or []
               if isinstance(p, dict) and p.get("component") == "vhost-limits"]
    for scope, name, values in wanted:
        if isinstance(name, str) and isinstance(values, dict) and values:
            try:
                plane.broker.limits.put(scope, name, values)
            except LimitError as exc:
                raise bad_request(str(exc)) from None
            _store(plane, scope, name)
