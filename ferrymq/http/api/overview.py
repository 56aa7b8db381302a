"""/api/overview, /api/whoami, /api/vhosts, /api/users, /api/permissions (RabbitMQ 3.10).

Users live in ``broker.users`` and ``broker.password_hashes``, their tags in ``broker.user_tags``;
permissions in ``broker.permissions``, enforced by every front end (ferrymq.core.permissions), who may
call what here by ferrymq.http.tag_gate.
Vhosts, users and permissions changed here go through the Broker's methods, which store them in the
topology store: they survive a restart."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ferrymq import __version__
from ferrymq.core.broker import Broker
from ferrymq.core.passwords import ALGORITHMS, DEFAULT_ALGORITHM, hash_password
from ferrymq.core.permissions import invalid_pattern, parse_tags
from ferrymq.core.vhost import VHost
from ferrymq.http import listing, lookup, views
from ferrymq.http.api.grant_lists import answer
from ferrymq.http.auth import USER, user_tags
from ferrymq.http.plane import Plane
from ferrymq.http.responses import bad_request, no_content, not_found, ok

routes = web.RouteTableDef()
RABBITMQ_VERSION = "3.10.8"  # the RabbitMQ whose management API this one answers as
PERMISSION_KEYS = ("configure", "write", "read")
# message_stats name -> the queue counter it totals
STATS = {"publish": "published", "deliver_get": "delivered", "ack": "acked", "redeliver": "requeued"}


@dataclass(slots=True)
class _Rates:
    """The last totals seen, so each overview's rates are the change since the previous call."""

    at_ms: int = 0
    totals: dict[str, int] = field(default_factory=dict)


_RATES: dict[int, tuple[Plane, _Rates]] = {}


def _rates(plane: Plane) -> _Rates:
    held = _RATES.get(id(plane))
    if held is None or held[0] is not plane:
        held = _RATES[id(plane)] = (plane, _Rates())
    return held[1]


def message_stats(plane: Plane) -> dict[str, Any]:
    totals = dict.fromkeys(STATS, 0)
    for vh in plane.broker.vhosts.values():
        for q in vh.queues.values():
            for name, counter in STATS.items():
                totals[name] += q.counters[counter]
    rates, now = _rates(plane), plane.clock.monotonic_ms()
    elapsed = (now - rates.at_ms) / 1000 if rates.at_ms else 0.0
    out: dict[str, Any] = {}
    for name, total in totals.items():
        out[name] = total
        delta = total - rates.totals.get(name, total)
        out[f"{name}_details"] = {"rate": round(delta / elapsed, 1) if elapsed > 0 else 0.0}
    rates.at_ms, rates.totals = now, totals
    return out


def _totals(broker: Broker) -> tuple[dict[str, int], dict[str, Any]]:
    queues = [q for vh in broker.vhosts.values() for q in vh.queues.values()]
    ready = sum(q.message_count for q in queues)
    unacked = sum(q.unacked_count for q in queues)
    zero = {"rate": 0.0}
    return ({"queues": len(queues), "consumers": sum(len(q.consumers) for q in queues),
             "exchanges": sum(len(vh.exchanges) + 1 for vh in broker.vhosts.values())},
            {"messages": ready + unacked, "messages_details": zero, "messages_ready": ready,
             "messages_ready_details": zero, "messages_unacknowledged": unacked,
             "messages_unacknowledged_details": zero})


def _listeners(request: web.Request, plane: Plane) -> list[dict[str, Any]]:
    sock = request.transport.get_extra_info("sockname") if request.transport else None
    ports = [("amqp", plane.amqp.port), ("http", sock[1] if sock else plane.settings.http_port)]
    if plane.kafka is not None:
        ports.append(("kafka", plane.kafka.port))
    return [{"node": views.NODE, "protocol": proto, "ip_address": plane.settings.host, "port": port}
            for proto, port in ports]


@routes.get("/api/overview")
async def overview(request: web.Request) -> web.Response:
    plane = lookup.plane(request)
    objects, queue_totals = _totals(plane.broker)
    objects.update(connections=len(plane.amqp.connections), channels=len(plane.broker.channels))
    return ok({"management_version": RABBITMQ_VERSION, "rabbitmq_version": RABBITMQ_VERSION,
               "product_name": "FerryMQ", "product_version": __version__, "rates_mode": "basic",
               "node": views.NODE, "cluster_name": views.NODE, "object_totals": objects,
               "queue_totals": queue_totals, "message_stats": message_stats(plane),
               "listeners": _listeners(request, plane), "exchange_types": _exchange_types()})


def _exchange_types() -> list[dict[str, Any]]:
    return [{"name": t, "description": "", "enabled": True}
            for t in ("direct", "fanout", "headers", "topic", "x-delayed-message")]


@routes.get("/api/whoami")
async def whoami(request: web.Request) -> web.Response:
    return ok({"name": request[USER], "tags": user_tags(lookup.plane(request).broker, request[USER])})


# --- vhosts ------------------------------------------------------------------------------------

def vhost_json(vh: VHost) -> dict[str, Any]:
    ready = sum(q.message_count for q in vh.queues.values())
    unacked = sum(q.unacked_count for q in vh.queues.values())
    description = "Default virtual host" if vh.name == "/" else ""
    zero = {"rate": 0.0}
    return {"name": vh.name, "description": description, "tags": [], "tracing": False,
            "default_queue_type": "undefined", "metadata": {"description": description, "tags": []},
            "cluster_state": {views.NODE: "running"}, "messages": ready + unacked,
            "messages_details": zero, "messages_ready": ready, "messages_ready_details": zero,
            "messages_unacknowledged": unacked, "messages_unacknowledged_details": zero}


@routes.get("/api/vhosts")
async def vhosts(request: web.Request) -> web.Response:
    items = [vhost_json(vh) for vh in lookup.plane(request).broker.vhosts.values()]
    return ok(listing.apply(items, request.query))


@routes.get("/api/vhosts/{vhost}")
async def vhost_show(request: web.Request) -> web.Response:
    return ok(vhost_json(lookup.vhost(request)))


@routes.put("/api/vhosts/{vhost}")
async def vhost_put(request: web.Request) -> web.Response:
    await lookup.body(request)
    broker, name = lookup.plane(request).broker, request.match_info["vhost"]
    existed = name in broker.vhosts
    broker.create_vhost(name)
    if existed:
        return no_content()
    # rabbit_vhost:maybe_grant_full_permissions: whoever creates a vhost may use it
    broker.set_permission(name, request[USER], {k: ".*" for k in PERMISSION_KEYS})
    return web.Response(status=201)


@routes.delete("/api/vhosts/{vhost}")
async def vhost_delete(request: web.Request) -> web.Response:
    """Delete a vhost and all it holds (queues and exchanges leave the topology store too)."""
    plane = lookup.plane(request)
    vh = lookup.vhost(request)
    for q in list(vh.queues.values()):
        vh.drop_queue(q)
    for name in [n for n in vh.exchanges if not n.startswith("amq.")]:
        if name in vh.exchanges:
            vh.delete_exchange(name)
    plane.broker.delete_vhost(vh.name)
    plane.end_turn()
    return no_content()


# --- users -------------------------------------------------------------------------------------

def user_json(broker: Broker, name: str) -> dict[str, Any]:
    """RabbitMQ shows a salted SHA-256 hash: the stored one, or for a configured user (plain password
    from the settings) one salted stably from the name, shaped the same."""
    hashed = broker.password_hashes.get(name)
    if hashed is None:
        salt = hashlib.sha256(name.encode()).digest()[:4]
        hashed = (hash_password(broker.users[name], salt), DEFAULT_ALGORITHM)
    return {"name": name, "password_hash": hashed[0], "hashing_algorithm": hashed[1],
            "tags": user_tags(broker, name), "limits": broker.limits.of("user", name)}


@routes.get("/api/users")
async def users(request: web.Request) -> web.Response:
    broker = lookup.plane(request).broker
    items = [user_json(broker, n) for n in broker.users]
    return ok(listing.apply(items, request.query))


@routes.get("/api/users/{name}")
async def user_show(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    broker = lookup.plane(request).broker
    if name not in broker.users:
        raise not_found()
    return ok(user_json(broker, name))


@routes.put("/api/users/{name}")
async def user_put(request: web.Request) -> web.Response:
    """Create or update a user: a ``password`` is stored as RabbitMQ's salted hash, a
    ``password_hash`` as given (verified at login, "" matches nothing); the user survives a restart."""
    data = await lookup.body(request)
    broker, name = lookup.plane(request).broker, request.match_info["name"]
    password, hashed = data.get("password"), data.get("password_hash")
    algorithm = data.get("hashing_algorithm", DEFAULT_ALGORITHM)
    if not isinstance(password, str | None) or not isinstance(hashed, str | None):
        raise bad_request("password must be a string")
    if algorithm not in ALGORITHMS:
        raise bad_request(f"unsupported hashing algorithm {algorithm!r}")
    tags = parse_tags(data["tags"]) if "tags" in data else None
    new = broker.put_user(name, password, hashed, algorithm, tags=tags)
    return web.Response(status=201) if new else no_content()


@routes.delete("/api/users/{name}")
async def user_delete(request: web.Request) -> web.Response:
    broker, name = lookup.plane(request).broker, request.match_info["name"]
    if not broker.delete_user(name):
        raise not_found()
    return no_content()


# --- permissions ---------------------------------------------------------------------------------

def permission_json(key: tuple[str, str], perm: dict[str, str]) -> dict[str, Any]:
    return {"user": key[1], "vhost": key[0], **{k: perm[k] for k in PERMISSION_KEYS}}


@routes.get("/api/permissions")
@routes.get("/api/users/{name}/permissions")
@routes.get("/api/vhosts/{vhost}/permissions")
async def permission_list(request: web.Request) -> web.Response:
    return answer(request, lookup.plane(request).broker.permissions, permission_json)


def _permission_key(request: web.Request) -> tuple[str, str]:
    return request.match_info["vhost"], request.match_info["user"]


@routes.get("/api/permissions/{vhost}/{user}")
async def permission_show(request: web.Request) -> web.Response:
    key = _permission_key(request)
    perm = lookup.plane(request).broker.permissions.get(key)
    if perm is None:
        raise not_found()
    return ok(permission_json(key, perm))


@routes.put("/api/permissions/{vhost}/{user}")
async def permission_put(request: web.Request) -> web.Response:
    data = await lookup.body(request)
    lookup.require(data, *PERMISSION_KEYS)
    broker, key = lookup.plane(request).broker, _permission_key(request)
    if key[0] not in broker.vhosts or key[1] not in broker.users:
        raise bad_request("vhost_or_user_not_found")
    for k in PERMISSION_KEYS:
        if (invalid := invalid_pattern(str(data[k]))) is not None:
            raise bad_request(invalid)
    new = broker.set_permission(*key, {k: str(data[k]) for k in PERMISSION_KEYS})
    return web.Response(status=201) if new else no_content()


@routes.delete("/api/permissions/{vhost}/{user}")
async def permission_delete(request: web.Request) -> web.Response:
    if not lookup.plane(request).broker.clear_permission(*_permission_key(request)):
        raise not_found()
    return no_content()
