"""/api/topic-permissions and the per-user and per-vhost lists of them (RabbitMQ 3.10's shapes).

A topic permission restricts, per user, vhost and topic exchange, which routing keys the user may
publish with (``write``) and bind with (``read``); ferrymq.core.permissions enforces them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.core.broker import Broker
from ferrymq.core.permissions import invalid_pattern
from ferrymq.http import lookup
from ferrymq.http.api.grant_lists import answer, grants_json
from ferrymq.http.responses import bad_request, no_content, not_found, ok

routes = web.RouteTableDef()


def topic_json(key: tuple[str, str, str], rule: dict[str, str]) -> dict[str, Any]:
    return {"user": key[1], "vhost": key[0], "exchange": key[2], "write": rule["write"],
            "read": rule["read"]}


def topic_permissions(broker: Broker, vhost: str | None = None, user: str | None = None) -> list[Any]:
    return grants_json(broker.access.topics, topic_json, vhost=vhost, user=user)


@routes.get("/api/topic-permissions")
@routes.get("/api/users/{name}/topic-permissions")
@routes.get("/api/vhosts/{vhost}/topic-permissions")
async def topic_permission_list(request: web.Request) -> web.Response:
    return answer(request, lookup.plane(request).broker.access.topics, topic_json)


def _key(request: web.Request) -> tuple[str, str]:
    return request.match_info["vhost"], request.match_info["user"]


@routes.get("/api/topic-permissions/{vhost}/{user}")
async def topic_permission_show(request: web.Request) -> web.Response:
    vhost, user = _key(request)
    found = topic_permissions(lookup.plane(request).broker, vhost=vhost, user=user)
    if not found:
        raise not_found()
    return ok(found)


@routes.put("/api/topic-permissions/{vhost}/{user}")
async def topic_permission_put(request: web.Request) -> web.Response:
    data = await lookup.body(request)
    lookup.require(data, "exchange", "write", "read")
    broker, (vhost, user) = lookup.plane(request).broker, _key(request)
    if vhost not in broker.vhosts or user not in broker.users:
        raise bad_request("vhost_or_user_not_found")
    for pattern in (str(data["write"]), str(data["read"])):
        if (invalid := invalid_pattern(pattern)) is not None:
            raise bad_request(invalid)
    new = broker.set_topic_permission(vhost, user, str(data["exchange"]), str(data["write"]),
                                      str(data["read"]))
    return web.Response(status=201) if new else no_content()


@routes.delete("/api/topic-permissions/{vhost}/{user}")
async def topic_permission_delete(request: web.Request) -> web.Response:
    """All of the user's topic permissions in the vhost, or one exchange's (``?exchange=``)."""
    vhost, user = _key(request)
    if not lookup.plane(request).broker.clear_topic_permission(vhost, user, request.query.get("exchange")):
        raise not_found()
    return no_content()
