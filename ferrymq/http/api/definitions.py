"""/api/definitions (and /{vhost}): export and import in RabbitMQ 3.10's JSON format, so a file
exported by RabbitMQ imports here and FerryMQ's export imports into RabbitMQ.

Export: users carry a salted ``rabbit_password_hashing_sha256`` hash (salt from the broker's Rng);
tags, permissions and topic permissions as stored (ferrymq.http.api.access_definitions); exclusive
queues and the built-in amq.* exchanges are left out, as RabbitMQ does. Import: users (a password or
a hash, kept and verified at login) with their tags, vhosts, permissions, topic permissions,
policies, exchanges, queues, bindings; parameters are accepted and ignored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.core.passwords import ALGORITHMS, DEFAULT_ALGORITHM, hash_password
from ferrymq.core.policy import PolicyError, make_policy
from ferrymq.core.vhost import VHost
from ferrymq.http.api import access_definitions
from ferrymq.http.api.connections import jsonable, paced
from ferrymq.http.api.limits import exported_parameters, import_limits
from ferrymq.http.auth import user_tags
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import bad_request, no_content, not_found, ok, read_json

routes = web.RouteTableDef()


def _users(plane: Plane) -> list[dict[str, Any]]:
    broker, out = plane.broker, []
    for name in sorted(broker.users):
        hashed = broker.password_hashes.get(name)
        if hashed is None:
            salt = broker.rng.getrandbits(32).to_bytes(4, "big")
            hashed = (hash_password(broker.users[name], salt), DEFAULT_ALGORITHM)
        out.append({"name": name, "password_hash": hashed[0], "hashing_algorithm": hashed[1],
                    "tags": user_tags(broker, name), "limits": broker.limits.of("user", name)})
    return out


async def _objects(vhost: VHost, with_vhost: bool) -> dict[str, list[dict[str, Any]]]:
    """A vhost's policies, queues, exchanges and bindings as RabbitMQ exports them."""
    tag = {"vhost": vhost.name} if with_vhost else {}
    queues = await paced(lambda q: {"name": q.name, **tag, "durable": q.durable, "auto_delete": q.auto_delete,
                                    "arguments": jsonable(q.arguments)},
                         [q for q in vhost.queues.values() if q.exclusive_owner is None])
    exchanges = await paced(lambda e: {"name": e.name, **tag, "type": e.type, "durable": e.durable,
                                       "auto_delete": e.auto_delete, "internal": e.internal,
                                       "arguments": jsonable(e.arguments)},
                            [e for e in vhost.exchanges.values() if e.name and not e.name.startswith("amq.")])
    bindings = [{"source": e.name, **tag, "destination": b.destination,
                 "destination_type": "exchange" if b.destination_is_exchange else "queue",
                 "routing_key": b.routing_key, "arguments": jsonable(b.args())}
                for e in vhost.exchanges.values() if e.name for b in e.bindings()]
    return {"parameters": [], "policies": [p.as_json() for p in vhost.policies.values()],
            "queues": queues, "exchanges": exchanges, "bindings": bindings}


async def export_all(plane: Plane) -> dict[str, Any]:
    version = plane.settings.amqp_version
    vhosts = list(plane.broker.vhosts.values())
    users = _users(plane)
    out: dict[str, Any] = {
        "rabbit_version": version, "rabbitmq_version": version, "product_name": plane.settings.amqp_product,
        "product_version": version, "users": users, "vhosts": [{"name": v.name} for v in vhosts],
        "permissions": access_definitions.export_permissions(plane.broker),
        "topic_permissions": access_definitions.export_topic_permissions(plane.broker),
        "parameters": exported_parameters(plane), "global_parameters": [],
    }
    per_vhost = [await _objects(v, True) for v in vhosts]
    for key in ("policies", "queues", "exchanges", "bindings"):
        out[key] = [item for objects in per_vhost for item in objects[key]]
    return out


@routes.get("/api/definitions")
async def get_all(request: web.Request) -> web.Response:
    return ok(await export_all(request.app[PLANE]))


@routes.get("/api/definitions/{vhost}")
async def get_vhost(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    vhost = plane.broker.vhosts.get(request.match_info["vhost"])
    if vhost is None:
        raise not_found()
    return ok({"rabbit_version": plane.settings.amqp_version, **(await _objects(vhost, False))})


def _list(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise bad_request(f"'{key}' must be a list of objects")
    return items


def _import_user(plane: Plane, user: dict[str, Any]) -> None:
    broker, name = plane.broker, user.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("a user needs a name")
    if isinstance(user.get("password"), str):
        broker.put_user(name, user["password"])  # stored as a salted hash
        return
    algorithm = user.get("hashing_algorithm", DEFAULT_ALGORITHM)
    if algorithm not in ALGORITHMS:
        raise bad_request(f"unsupported hashing algorithm {algorithm!r}")
    broker.put_user(name, password_hash=str(user.get("password_hash", "")), algorithm=algorithm)


def _import_objects(plane: Plane, body: dict[str, Any], only: str | None) -> None:
    """Policies, exchanges, queues, bindings, in that order (bindings need both ends)."""
    def vhost_of(item: dict[str, Any]) -> VHost:
        name = only if only is not None else item.get("vhost", "/")
        return plane.broker.add_vhost(str(name))

    for p in _list(body, "policies"):
        try:
            policy = make_policy(vhost_of(p).name, str(p.get("name", "")), p)
        except PolicyError as exc:
            raise bad_request(str(exc)) from None
        vhost_of(p).set_policy(policy)
    for e in _list(body, "exchanges"):
        if str(e.get("name", "")).startswith("amq.") or not e.get("name"):
            continue  # RabbitMQ's built-ins exist everywhere already
        vhost_of(e).declare_exchange(
            str(e["name"]), str(e.get("type", "direct")), durable=bool(e.get("durable", True)),
            auto_delete=bool(e.get("auto_delete", False)), internal=bool(e.get("internal", False)),
            arguments=dict(e.get("arguments") or {}))
    for q in _list(body, "queues"):
        vhost_of(q).declare_queue(
            str(q.get("name", "")), connection=None, durable=bool(q.get("durable", True)),
            auto_delete=bool(q.get("auto_delete", False)), arguments=dict(q.get("arguments") or {}))
    for b in _list(body, "bindings"):
        vhost_of(b).bind(str(b.get("destination", "")), str(b.get("source", "")),
                         str(b.get("routing_key", "")), dict(b.get("arguments") or {}),
                         to_exchange=b.get("destination_type") == "exchange", connection=None)


async def _import(request: web.Request, only: str | None) -> web.Response:
    plane = request.app[PLANE]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("definitions must be a JSON object")
    if only is None:
        for user in _list(body, "users"):
            _import_user(plane, user)
            access_definitions.import_tags(plane.broker, user)
        for v in _list(body, "vhosts"):
            plane.broker.create_vhost(str(v.get("name", "/")))
        import_limits(plane, body)
        access_definitions.import_access(plane.broker, body)
    elif only not in plane.broker.vhosts:
        raise not_found()
    try:
        _import_objects(plane, body, only)
    except (TypeError, ValueError, AttributeError) as exc:  # a field of the wrong shape
        raise bad_request(f"invalid definitions: {exc}") from None
    plane.end_turn()
    return no_content()


@routes.post("/api/definitions")
async def post_all(request: web.Request) -> web.Response:
    return await _import(request, None)


@routes.post("/api/definitions/{vhost}")
async def post_vhost(request: web.Request) -> web.Response:
    return await _import(request, request.match_info["vhost"])
