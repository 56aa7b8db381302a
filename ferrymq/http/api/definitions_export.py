"""GET /api/definitions (and /{vhost}): the broker as RabbitMQ 3.10 exports it, so the file imports
into RabbitMQ (``rabbitmqadmin import``, POST /api/definitions, ``load_definitions``).

User tags, permissions and topic permissions as the access model holds them
(ferrymq.http.api.access_definitions); what an import kept as data comes back unchanged
(ferrymq.core.parameters): global parameters and operator policies (as RabbitMQ writes them:
parameters of the ``operator_policy`` component); vhost metadata as RabbitMQ 3.11 writes it (3.10
neither writes nor reads it). Users carry a salted ``rabbit_password_hashing_sha256`` hash (salt
from the broker's Rng for a configured user); exclusive queues and the built-in amq.* exchanges are
left out, as RabbitMQ leaves them out. User limits are in users[].limits (ferrymq.core.vhost_limits).
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.definitions import VHOST_LIMITS
from ferrymq.core.parameters import GLOBAL, INTERNAL_PREFIX, VHOST_METADATA
from ferrymq.core.passwords import DEFAULT_ALGORITHM, hash_password
from ferrymq.core.vhost import VHost
from ferrymq.http.api import access_definitions
from ferrymq.http.api.connections import jsonable, paced
from ferrymq.http.auth import user_tags
from ferrymq.http.plane import Plane


def _users(broker: Broker) -> list[dict[str, Any]]:
    out = []
    for name in sorted(broker.users):
        hashed = broker.password_hashes.get(name)
        if hashed is None:
            salt = broker.rng.getrandbits(32).to_bytes(4, "big")
            hashed = (hash_password(broker.users[name], salt), DEFAULT_ALGORITHM)
        out.append({"name": name, "password_hash": hashed[0], "hashing_algorithm": hashed[1],
                    "tags": user_tags(broker, name), "limits": broker.limits.of("user", name)})
    return out


def _vhost(broker: Broker, name: str) -> dict[str, Any]:
    metadata = broker.parameters.get(VHOST_METADATA, name, "")
    return {"name": name, "metadata": dict(metadata)} if metadata else {"name": name}


def _parameters(broker: Broker, vhost: str) -> list[dict[str, Any]]:
    """RabbitMQ's vhost-scoped parameters (operator policies among them, and the vhost's limits as
    RabbitMQ 3.10 writes them), never FerryMQ's own."""
    out = [{"value": value, "vhost": vhost, "component": component, "name": name}
           for (component, _, name), value in broker.parameters.items(vhost=vhost)
           if not component.startswith(INTERNAL_PREFIX)]
    limits = broker.limits.of("vhost", vhost)
    if limits:
        out.append({"value": limits, "vhost": vhost, "component": VHOST_LIMITS, "name": "limits"})
    return out


async def _objects(broker: Broker, vhost: VHost, with_vhost: bool) -> dict[str, list[dict[str, Any]]]:
    """A vhost's parameters, policies, queues, exchanges and bindings as RabbitMQ exports them."""
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
    # parameters and policies name their vhost even in a vhost's export, as RabbitMQ 3.10's do
    policies = [p.as_json() for p in vhost.policies.values()]
    return {"parameters": _parameters(broker, vhost.name), "policies": policies,
            "queues": queues, "exchanges": exchanges, "bindings": bindings}


async def export_all(plane: Plane) -> dict[str, Any]:
    broker, version = plane.broker, plane.settings.amqp_version
    vhosts = list(broker.vhosts.values())
    out: dict[str, Any] = {
        "rabbit_version": version, "rabbitmq_version": version, "product_name": plane.settings.amqp_product,
        "product_version": version, "users": _users(broker),
        "vhosts": [_vhost(broker, v.name) for v in vhosts],
        "permissions": access_definitions.export_permissions(broker),
        "topic_permissions": access_definitions.export_topic_permissions(broker),
        "global_parameters": [{"name": k[2], "value": value} for k, value in broker.parameters.items(GLOBAL)],
    }
    per_vhost = [await _objects(broker, v, True) for v in vhosts]
    out["parameters"] = [item for objects in per_vhost for item in objects["parameters"]]
    for key in ("policies", "queues", "exchanges", "bindings"):
        out[key] = [item for objects in per_vhost for item in objects[key]]
    return out


async def export_vhost(plane: Plane, vhost: VHost) -> dict[str, Any]:
    return {"rabbit_version": plane.settings.amqp_version, **(await _objects(plane.broker, vhost, False))}
