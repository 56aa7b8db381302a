"""What a user's management tags let it see and do on the HTTP API, as RabbitMQ's management plugin
decides it (rabbit_mgmt_util:is_authorized_*, 3.10).

- no management tag at all: ``Not management user`` on every call;
- administrator: everything;
- monitoring: reads everything, writes only in vhosts it holds permissions on;
- policymaker: policies in its vhosts;
- management: its own vhosts only (lists are filtered to them, other vhosts' objects refused).

Users, permissions, topic permissions, definitions, vhost creation and deletion, and tracing are an
administrator's. Refusals are RabbitMQ's: 401 ``not_authorised`` with its reason.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ferrymq.core.broker import Broker
from ferrymq.core.permissions import management_refusal
from ferrymq.http.responses import error

NOT_ADMIN = "Not administrator user"
NOT_VHOST = "User not authorised to access virtual host"
NOT_OBJECT = "User not authorised to access object"
ADMIN_PREFIXES = ("/api/users", "/api/permissions", "/api/topic-permissions", "/api/definitions",
                  "/api/ferrymq/traces")
# Lists a management user sees only its vhosts' part of (by each item's "vhost"; /api/vhosts by name)
FILTERED = frozenset({"/api/queues", "/api/exchanges", "/api/bindings", "/api/vhosts", "/api/connections",
                      "/api/channels", "/api/consumers", "/api/policies"})


def refusal(request: web.Request, broker: Broker, user: str) -> str | None:
    """Why ``user`` may not make this call, or None."""
    tags = broker.user_tags.get(user, [])
    refused = management_refusal(tags)
    if refused is not None or "administrator" in tags:
        return refused
    path, vhost = request.path, request.match_info.get("vhost")
    if path.startswith(ADMIN_PREFIXES) or _vhost_admin(path, request.method, vhost):
        return NOT_ADMIN
    if path.startswith("/api/policies"):
        return None if "policymaker" in tags and _may_use(broker, user, vhost) else NOT_OBJECT
    if vhost is None or vhost not in broker.vhosts:
        return None  # nothing vhost-specific (a missing vhost gets its 404 from the handler)
    if request.method in ("GET", "HEAD") and "monitoring" in tags:
        return None
    return None if _may_use(broker, user, vhost) else NOT_VHOST


# HTTP calls that RabbitMQ's management plugin makes as AMQP methods in the user's name, and the
# permissions they need: (kind, resource type, route parameter naming it). "direct" ones
# (rabbit_mgmt_util:direct_request) answer a refusal with "Access refused."; the others run on a
# channel (with_channel), need the vhost, and answer with the channel's close text (a publish's
# asynchronous close reaches the plugin as a 400 with the code in front: "403 ACCESS_REFUSED - ...").
# Queue and exchange declares are not here: the declare itself checks them (ferrymq.http.lookup.authorise),
# after the body is read, with the dead-letter and alternate exchanges it names.
_DIRECT = "direct"
AMQP_CALLS: dict[tuple[str, str], tuple[str, list[tuple[str, str, str]]]] = {
    ("DELETE", "/api/queues/{vhost}/{name}"): (_DIRECT, [("configure", "queue", "name")]),
    ("DELETE", "/api/queues/{vhost}/{name}/contents"): (_DIRECT, [("read", "queue", "name")]),
    ("DELETE", "/api/exchanges/{vhost}/{name}"): (_DIRECT, [("configure", "exchange", "name")]),
    ("POST", "/api/queues/{vhost}/{name}/get"): ("channel", [("read", "queue", "name")]),
    ("POST", "/api/exchanges/{vhost}/{name}/publish"): ("publish", [("write", "exchange", "name")]),
}
BINDING = "/api/bindings/{vhost}/e/{source}/{kind}/{destination}"


def amqp_refusal(request: web.Request, broker: Broker, user: str) -> web.HTTPException | None:
    """The user's own permissions on what the call touches, as RabbitMQ checks them (for every
    user, administrators too: the management plugin acts in the user's name)."""
    vhost = request.match_info.get("vhost")
    if vhost is None or vhost not in broker.vhosts:
        return None
    style, checks = _amqp_checks(request)
    if style != _DIRECT and broker.access.vhost_refusal(user, vhost) is not None:
        return error(401, "not_authorised", "Access refused.")
    for kind, resource_type, name in checks:
        refused = broker.access.check(user, vhost, kind, resource_type, name)
        if refused is None:
            continue
        if style == _DIRECT:
            return error(401, "not_authorised", "Access refused.")
        if style == "publish":
            return error(400, "bad_request", f"403 ACCESS_REFUSED - {refused}")
        return error(401, "not_authorised", f"ACCESS_REFUSED - {refused}")
    return None


def _amqp_checks(request: web.Request) -> tuple[str, list[tuple[str, str, str]]]:
    info = request.match_info
    resource = info.route.resource
    template = resource.canonical if resource is not None else ""
    if template.startswith("/api/bindings/{vhost}/e/") and request.method in ("POST", "DELETE"):
        destination_type = "queue" if info.get("kind") == "q" else "exchange"
        return _DIRECT, [("write", destination_type, info.get("destination", "")),
                         ("read", "exchange", info.get("source", ""))]
    style, checks = AMQP_CALLS.get((request.method, template), (_DIRECT, []))
    return style, [(kind, type_, info.get(param, "")) for kind, type_, param in checks]


def _vhost_admin(path: str, method: str, vhost: str | None) -> bool:
    """Creating or deleting a vhost, or reading its permission lists."""
    if not path.startswith("/api/vhosts/") or vhost is None:
        return False
    return (method in ("PUT", "DELETE") and path.count("/") == 3) or path.endswith("permissions")


def _may_use(broker: Broker, user: str, vhost: str | None) -> bool:
    return vhost is None or broker.access.vhost_refusal(user, vhost) is None


def sees_everything(broker: Broker, user: str) -> bool:
    tags = broker.user_tags.get(user, [])
    return "administrator" in tags or "monitoring" in tags


def filter_listing(response: web.StreamResponse, request: web.Request, broker: Broker,
                   user: str) -> web.StreamResponse:
    """A management user's view of a list: only the items of vhosts it holds permissions on."""
    if (request.method != "GET" or request.path not in FILTERED or sees_everything(broker, user)
            or not isinstance(response, web.Response) or response.status != 200 or response.body is None):
        return response
    body = json.loads(bytes(response.body))  # type: ignore[arg-type]
    mine = set(broker.access.login_vhosts(user))
    key = "name" if request.path == "/api/vhosts" else "vhost"
    items = body.get("items") if isinstance(body, dict) else body
    if isinstance(items, list):
        kept = [i for i in items if not isinstance(i, dict) or _vhost_of(i, key) in mine]
        body = {**body, "items": kept} if isinstance(body, dict) else kept
    return web.json_response(body, status=response.status)


def _vhost_of(item: dict[str, Any], key: str) -> Any:
    value = item.get(key)
    if key == "vhost" and value is None and isinstance(item.get("connection_details"), dict):
        return item["connection_details"].get("vhost")
    return value
