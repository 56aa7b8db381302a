"""/api/queues: list, show, declare, delete, purge, get, and a queue's bindings (RabbitMQ 3.10)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from aiohttp import web

from ferrymq.core.queue import Entry, Queue
from ferrymq.core.vhost import VHost
from ferrymq.http import listing, lookup, views
from ferrymq.http.responses import JSON, bad_request, error, no_content, ok, ok_list

routes = web.RouteTableDef()
YIELD_EVERY = 500  # views built between two yields to the loop (a 10,000-queue list stays fair)
ACKMODES = {"ack_requeue_true": "requeue", "ack_requeue_false": "ack",
            "reject_requeue_true": "requeue", "reject_requeue_false": "reject"}
PROPERTY_NAMES = ("content_type", "content_encoding", "priority", "correlation_id", "reply_to",
                  "expiration", "message_id", "timestamp", "type", "user_id", "app_id",
                  "cluster_id", "delivery_mode", "headers")


LIST_PARAMETERS = ("name", "sort", "columns", "page")


def _pairs(vhosts: list[VHost]) -> list[tuple[VHost, Queue]]:
    return [(vh, q) for vh in vhosts for q in sorted(vh.queues.values(), key=_name)]


async def queue_views(request: web.Request, vhosts: list[VHost]) -> list[dict[str, Any]]:
    """Every queue's view, yielding to the loop every few hundred so other clients go on."""
    clock = lookup.plane(request).clock
    now, mono = clock.now_ms(), clock.monotonic_ms()
    out: list[dict[str, Any]] = []
    for i, (vh, q) in enumerate(_pairs(vhosts)):
        if i and not i % YIELD_EVERY:
            await asyncio.sleep(0)
        if not q.deleted:
            out.append(views.queue_json(vh.name, q, now, mono))
    return out


async def queue_list_body(request: web.Request, vhosts: list[VHost]) -> bytes:
    """A plain list (no list parameters) encoded straight from the queues, a slice at a time with
    a yield between slices: 10,000 queues never hold the loop for more than a few milliseconds."""
    clock = lookup.plane(request).clock
    now, mono = clock.now_ms(), clock.monotonic_ms()
    names = {vh.name: views.queue_text_vhost(vh.name) for vh in vhosts}
    pairs = _pairs(vhosts)
    parts: list[bytes] = []
    for start in range(0, len(pairs), YIELD_EVERY):
        if start:
            await asyncio.sleep(0)
        chunk = ",".join([views.queue_text(names[vh.name], q, now, mono)
                          for vh, q in pairs[start:start + YIELD_EVERY] if not q.deleted])
        if chunk:
            parts += (b",", chunk.encode()) if parts else (chunk.encode(),)
    return b"".join([b"[", *parts, b"]"])  # one copy of the whole body


async def answer_list(request: web.Request, vhosts: list[VHost]) -> web.Response:
    if any(key in request.query for key in LIST_PARAMETERS):
        return await ok_list(listing.apply(await queue_views(request, vhosts), request.query))
    return web.Response(body=await queue_list_body(request, vhosts), content_type=JSON)


def _name(q: Queue) -> str:
    return q.name


@routes.get("/api/queues")
async def list_all(request: web.Request) -> web.Response:
    return await answer_list(request, list(lookup.plane(request).broker.vhosts.values()))


@routes.get("/api/queues/{vhost}")
async def list_vhost(request: web.Request) -> web.Response:
    return await answer_list(request, [lookup.vhost(request)])


@routes.get("/api/queues/{vhost}/{name}")
async def show(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    q = lookup.queue(request, vh)
    clock = lookup.plane(request).clock
    return ok(views.queue_json(vh.name, q, clock.now_ms(), clock.monotonic_ms()))


@routes.put("/api/queues/{vhost}/{name}")
async def declare(request: web.Request) -> web.Response:
    """RabbitMQ's queue.declare over HTTP: 201 when created, 204 when an equivalent one exists."""
    vh = lookup.vhost(request)
    data = await lookup.body(request)
    name = request.match_info["name"]
    existing = vh.queues.get(name)
    vh.declare_queue(name, connection=existing.exclusive_owner if existing else lookup.HTTP_CONNECTION,
                     durable=lookup.boolean(data, "durable"),
                     exclusive=existing is not None and existing.exclusive_owner is not None,
                     auto_delete=lookup.boolean(data, "auto_delete"),
                     arguments=lookup.arguments(data), authorise=lookup.authorise(request, vh))
    lookup.plane(request).end_turn()
    return no_content() if existing is not None else web.Response(status=201)


@routes.delete("/api/queues/{vhost}/{name}")
async def delete(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    q = lookup.queue(request, vh)
    # The management API may delete anyone's exclusive queue, as RabbitMQ's does.
    vh.delete_queue(q.name, connection=q.exclusive_owner, if_unused=lookup.flag(request.query, "if-unused"),
                    if_empty=lookup.flag(request.query, "if-empty"))
    lookup.plane(request).end_turn()
    return no_content()


@routes.delete("/api/queues/{vhost}/{name}/contents")
async def purge(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    q = lookup.queue(request, vh)
    vh.purge_queue(q.name, q.exclusive_owner)
    lookup.plane(request).end_turn()
    return no_content()


@routes.get("/api/queues/{vhost}/{name}/bindings")
async def bindings(request: web.Request) -> web.Response:
    vh = lookup.vhost(request)
    q = lookup.queue(request, vh)
    items = [b for b in views.bindings_of(vh)
             if b["destination_type"] == "queue" and b["destination"] == q.name]
    return await ok_list(listing.apply(items, request.query))


@routes.post("/api/queues/{vhost}/{name}/get")
async def get(request: web.Request) -> web.Response:
    """Take up to ``count`` messages, then ack, requeue or reject them all (RabbitMQ's get)."""
    vh = lookup.vhost(request)
    name = request.match_info["name"]
    q = vh.queues.get(name)
    if q is None:  # RabbitMQ's get answers with the AMQP text here, not the generic 404
        raise error(404, "not_found", f"NOT_FOUND - no queue '{name}' in vhost '{vh.name}'")
    count, mode, encoding, truncate = _get_options(await lookup.body(request))
    taken: list[Entry] = []
    out: list[dict[str, Any]] = []
    while len(taken) < count:
        entry = q.get()
        if entry is None:
            break
        q.unacked_count += 1
        taken.append(entry)
        out.append(message_json(entry, q.message_count, encoding, truncate))
    _settle(q, taken, mode)
    lookup.plane(request).end_turn()
    return ok(out)


def _get_options(data: dict[str, Any]) -> tuple[int, str, str, int | None]:
    """(count, settle mode, encoding, truncate) from a get body, with RabbitMQ's missing-key 400."""
    lookup.require(data, "count", "ackmode", "encoding")
    mode = ACKMODES.get(str(data["ackmode"]))
    if mode is None or data["encoding"] not in ("auto", "base64"):
        raise bad_request(f"invalid ackmode or encoding: {data['ackmode']!r}, {data['encoding']!r}")
    truncate = _int(data, "truncate", 0) if data.get("truncate") else None
    return _int(data, "count", 1), mode, str(data["encoding"]), truncate


def _int(data: dict[str, Any], key: str, minimum: int) -> int:
    try:
        value = int(data[key])
    except (TypeError, ValueError):
        raise bad_request(f"{key} must be an integer") from None
    if value < minimum:
        raise bad_request(f"{key} must be at least {minimum}")
    return value


def _settle(q: Queue, taken: list[Entry], mode: str) -> None:
    for entry in taken:
        if mode == "ack":
            q.settle(entry, None)
        elif mode == "requeue":
            q.requeue(entry, None)
        else:
            q.discard(entry, None)
    if mode == "requeue" and not q.deleted:
        q.dispatch()


def message_json(entry: Entry, remaining: int, encoding: str, truncate: int | None) -> dict[str, Any]:
    msg = entry.msg
    body = msg.body if truncate is None else msg.body[:truncate]
    payload, kind = base64.b64encode(body).decode(), "base64"
    if encoding == "auto":
        try:
            payload, kind = body.decode(), "string"
        except UnicodeDecodeError:
            pass
    props = {k: v for k in PROPERTY_NAMES if (v := getattr(msg.props, k)) is not None}
    return {"payload_bytes": len(msg.body), "redelivered": entry.deliveries > 1,
            "exchange": msg.exchange, "routing_key": msg.routing_key, "message_count": remaining,
            "properties": views.jsonable(props) if props else [], "payload": payload,
            "payload_encoding": kind}
