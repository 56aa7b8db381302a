"""/api/bindings: list, and bind/unbind exchange-to-queue (``q``) and exchange-to-exchange (``e``).

A binding is addressed by its ``properties_key`` (views.properties_key), as RabbitMQ's are."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from ferrymq.core.vhost import VHost
from ferrymq.http import listing, lookup, views
from ferrymq.http.responses import no_content, not_found, ok, ok_list

routes = web.RouteTableDef()
PAIR = "/api/bindings/{vhost}/e/{source}/{kind:q|e}/{destination}"


@routes.get("/api/bindings")
async def list_all(request: web.Request) -> web.Response:
    items = [b for vh in lookup.plane(request).broker.vhosts.values() for b in views.bindings_of(vh)]
    return await ok_list(listing.apply(items, request.query))


@routes.get("/api/bindings/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    return await ok_list(listing.apply(views.bindings_of(lookup.vhost(request)), request.query))


def _ends(request: web.Request) -> tuple[VHost, str, str, bool]:
    """(vhost, source, destination, to an exchange), each end known or a 404."""
    vh = lookup.vhost(request)
    source = views.exchange_path_name(request.match_info["source"])
    destination = request.match_info["destination"]
    to_exchange = request.match_info["kind"] == "e"
    if to_exchange:
        destination = views.exchange_path_name(destination)
    if (source and source not in vh.exchanges) or (
            destination not in (vh.exchanges if to_exchange else vh.queues)):
        raise not_found()
    return vh, source, destination, to_exchange


def _between(vh: VHost, source: str, destination: str, to_exchange: bool) -> list[dict[str, Any]]:
    kind = "exchange" if to_exchange else "queue"
    return [b for b in views.bindings_of(vh) if b["source"] == source
            and b["destination"] == destination and b["destination_type"] == kind]


@routes.get(PAIR)
async def list_pair(request: web.Request) -> web.Response:
    return await ok_list(listing.apply(_between(*_ends(request)), request.query))


@routes.post(PAIR)
async def create(request: web.Request) -> web.Response:
    """Bind; 201 with the new binding's Location relative to this path, as RabbitMQ answers."""
    vh, source, destination, to_exchange = _ends(request)
    data = await lookup.body(request)
    key, args = str(data.get("routing_key", "")), lookup.arguments(data)
    vh.bind(destination, source, key, args, to_exchange=to_exchange, connection=_owner(vh, destination,
                                                                                      to_exchange))
    lookup.plane(request).end_turn()
    location = f"{quote(request.match_info['destination'], safe='')}/" \
               f"{quote(views.properties_key(key, args), safe='')}"
    return web.Response(status=201, headers={"Location": location})


def _owner(vh: VHost, destination: str, to_exchange: bool) -> object:
    """The management API binds anyone's exclusive queue: act as its owner."""
    queue = None if to_exchange else vh.queues.get(destination)
    return queue.exclusive_owner if queue is not None and queue.exclusive_owner else lookup.HTTP_CONNECTION


def _one(request: web.Request) -> tuple[VHost, str, str, bool, dict[str, Any]]:
    vh, source, destination, to_exchange = _ends(request)
    props = request.match_info["props"]
    for b in _between(vh, source, destination, to_exchange):
        if b["properties_key"] == props:
            return vh, source, destination, to_exchange, b
    raise not_found()


@routes.get(PAIR + "/{props}")
async def show(request: web.Request) -> web.Response:
    return ok(_one(request)[4])


@routes.delete(PAIR + "/{props}")
async def delete(request: web.Request) -> web.Response:
    vh, source, destination, to_exchange, b = _one(request)
    vh.unbind(destination, source, b["routing_key"], b["arguments"], to_exchange=to_exchange,
              connection=_owner(vh, destination, to_exchange))
    lookup.plane(request).end_turn()
    return no_content()
