"""/api/exchanges: list, show, declare, delete, publish, and an exchange's bindings (RabbitMQ 3.10).

The default exchange is ``amq.default`` in paths and ``""`` in JSON, as RabbitMQ has it."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aiohttp import web

from ferrymq.core.exchange import Exchange
from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.core.vhost import VHost
from ferrymq.errors import ProtocolError
from ferrymq.http import listing, lookup, views
from ferrymq.http.responses import bad_request, no_content, not_found, ok, ok_list

routes = web.RouteTableDef()
PROPERTY_TYPES: dict[str, type] = {
    "content_type": str, "content_encoding": str, "headers": dict, "delivery_mode": int,
    "priority": int, "correlation_id": str, "reply_to": str, "expiration": str, "message_id": str,
    "timestamp": int, "type": str, "user_id": str, "app_id": str, "cluster_id": str,
}


def _exchange(request: web.Request, vh: VHost) -> Exchange | None:
    """The path's exchange (None for the default one); unknown is a 404."""
    name = views.exchange_path_name(request.match_info["name"])
    if not name:
        return None
    ex = vh.exchanges.get(name)
    if ex is None:
        raise not_found()
    return ex


@routes.get("/api/exchanges")
async def list_all(request: web.Request) -> web.Response:
    items = [e for vh in lookup.plane(request).broker.vhosts.values() for e in views.exchanges_of(vh)]
    return await ok_list(listing.apply(items, request.query))


@routes.get("/api/exchanges/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    return await ok_list(listing.apply(views.exchanges_of(lookup.vhost(request)), request.query))


@routes.get("/api/exchanges/{vhost}/{name}")
async def show(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    ex = _exchange(request, vh)
    return ok(views.default_exchange_json(vh.name) if ex is None else views.exchange_json(vh, ex))


@routes.put("/api/exchanges/{vhost}/{name}")
async def declare(request: web.Request) -> web.Response:
    """exchange.declare over HTTP: 201 created, 204 when an equivalent one exists (type: direct)."""
    vh = lookup.vhost(request)
    data = await lookup.body(request)
    name = views.exchange_path_name(request.match_info["name"])
    existed = name in vh.exchanges
    vh.declare_exchange(name, str(data.get("type", "direct")), durable=lookup.boolean(data, "durable"),
                        auto_delete=lookup.boolean(data, "auto_delete"),
                        internal=lookup.boolean(data, "internal"), arguments=lookup.arguments(data),
                        authorise=lookup.authorise(request, vh))
    lookup.plane(request).end_turn()
    return no_content() if existed else web.Response(status=201)


@routes.delete("/api/exchanges/{vhost}/{name}")
async def delete(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    ex = _exchange(request, vh)
    vh.delete_exchange("" if ex is None else ex.name, if_unused=lookup.flag(request.query, "if-unused"))
    lookup.plane(request).end_turn()
    return no_content()


@routes.get("/api/exchanges/{vhost}/{name}/bindings/{side:source|destination}")
async def bindings(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    ex = _exchange(request, vh)
    name = "" if ex is None else ex.name
    if request.match_info["side"] == "source":
        items = [b for b in views.bindings_of(vh) if b["source"] == name]
    else:
        items = [b for b in views.bindings_of(vh)
                 if b["destination_type"] == "exchange" and b["destination"] == name]
    return await ok_list(listing.apply(items, request.query))


@routes.post("/api/exchanges/{vhost}/{name}/publish")
async def publish(request: web.Request) -> web.Response:
    """Publish through the vhost's own route path (the one AMQP's basic.publish takes)."""
    vh = lookup.vhost(request)
    data = await lookup.body(request)
    lookup.require(data, "routing_key", "properties", "payload", "payload_encoding")
    exchange = views.exchange_path_name(request.match_info["name"])
    msg = Message(exchange, str(data["routing_key"]), _payload(data), _properties(data["properties"]),
                  None)
    try:
        routed, _ = vh.publish(exchange, msg.routing_key, msg, request.get("user", ""))
    except ProtocolError as exc:  # RabbitMQ's publish reason is the whole AMQP reply text
        raise bad_request(str(exc)) from None
    lookup.plane(request).end_turn()
    return ok({"routed": routed})


def _payload(data: dict[str, Any]) -> bytes:
    payload, encoding = data["payload"], data["payload_encoding"]
    if not isinstance(payload, str) or encoding not in ("string", "base64"):
        raise bad_request("payload must be a string and payload_encoding string or base64")
    if encoding == "string":
        return payload.encode()
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error:
        raise bad_request("payload is not valid base64") from None


def _properties(raw: Any) -> Properties:
    if raw in ([], None):
        return Properties()
    if not isinstance(raw, dict):
        raise bad_request("properties must be a JSON object")
    fields: dict[str, Any] = {}
    for key, value in raw.items():
        kind = PROPERTY_TYPES.get(key)
        if kind is None:
            continue  # RabbitMQ ignores properties it does not know
        if kind is int and isinstance(value, str) and value.isdigit():
            value = int(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise bad_request(f"property {key} must be a {kind.__name__}")
        fields[key] = value
    return Properties(**fields)
