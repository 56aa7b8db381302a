"""/api/connections, /api/channels, /api/consumers: the AMQP clients as RabbitMQ's management API
lists them (names as RabbitMQ makes them: "127.0.0.1:54321 -> 127.0.0.1:5672", channels "... (1)").

DELETE /api/connections/{name} closes the connection with 320 CONNECTION_FORCED and the reason from
the ``X-Reason`` header ("Closed via management plugin" without one), as RabbitMQ does.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from ferrymq.http import listing
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import no_content, not_found, ok
from ferrymq.server.tls import tls_details

if TYPE_CHECKING:
    from ferrymq.core.channel import Channel
    from ferrymq.core.consumer import Consumer
    from ferrymq.server.amqp.connection import AMQPConnection

routes = web.RouteTableDef()
T = TypeVar("T")
CONNECTION_FORCED = 320
DEFAULT_REASON = "Closed via management plugin"
NODE = f"rabbit@{socket.gethostname().split('.')[0]}"


def jsonable(value: Any) -> Any:
    """AMQP table values as JSON (bytes as text, as RabbitMQ's API shows them)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _state(conn: AMQPConnection) -> str:
    if "alarm" in conn.pause_reasons or conn.blocked_sent:
        return "blocked"
    return "flow" if "flow" in conn.pause_reasons else "running"


def connection_json(conn: AMQPConnection) -> dict[str, Any]:
    codec = conn.codec
    return {
        "name": conn.name, "node": NODE, "type": "network", "user": conn.username,
        "user_who_performed_action": conn.username,
        "vhost": conn.vhost.name if conn.vhost is not None else None,
        "host": conn.sockname[0], "port": conn.sockname[1],
        "peer_host": conn.peername[0], "peer_port": conn.peername[1],
        "protocol": "AMQP 0-9-1", "state": _state(conn), "channels": len(conn.channels),
        "channel_max": codec.channel_max, "frame_max": codec.frame_max, "timeout": codec.heartbeat,
        "client_properties": jsonable(getattr(codec, "client_properties", {}) or {}),
        "connected_at": conn.connected_at, "send_oct": conn.send_oct, "recv_oct": conn.recv_oct,
        "send_pend": 0, "auth_mechanism": getattr(codec, "_mechanism", "") or "PLAIN",
        **tls_details(conn.transport),
    }


def _details(conn: AMQPConnection) -> dict[str, Any]:
    return {"name": conn.name, "peer_host": conn.peername[0], "peer_port": conn.peername[1]}


def channel_json(conn: AMQPConnection, ch: Channel) -> dict[str, Any]:
    return {
        "name": f"{conn.name} ({ch.number})", "node": NODE, "number": ch.number,
        "connection_details": _details(conn), "consumer_count": len(ch.consumers),
        "messages_unacknowledged": ch.unacked_count, "messages_uncommitted": 0,
        "acks_uncommitted": 0, "messages_unconfirmed": 0,
        "prefetch_count": ch.prefetch_consumer, "global_prefetch_count": ch.prefetch_global,
        "confirm": ch.confirm_mode, "transactional": ch.tx_mode, "user": ch.username,
        "user_who_performed_action": ch.username, "vhost": ch.vhost.name,
        "state": "running" if ch.deliverable else "flow",
    }


def consumer_json(conn: AMQPConnection, ch: Channel, c: Consumer) -> dict[str, Any]:
    return {
        "consumer_tag": c.tag, "queue": {"name": c.queue.name, "vhost": ch.vhost.name},
        "channel_details": {"name": f"{conn.name} ({ch.number})", "number": ch.number,
                            "connection_name": conn.name, "peer_host": conn.peername[0],
                            "peer_port": conn.peername[1], "node": NODE, "user": ch.username},
        "ack_required": not c.no_ack, "prefetch_count": c.prefetch, "exclusive": c.exclusive,
        "arguments": jsonable(c.args), "active": True, "activity_status": "up",
        "consumer_timeout": c.timeout_ms,
    }


def _connections(request: web.Request) -> list[AMQPConnection]:
    """Connections that finished the handshake, oldest first."""
    conns = [c for c in request.app[PLANE].amqp.connections if c.vhost is not None]
    return sorted(conns, key=lambda c: (c.connected_at, c.name))


def _find(request: web.Request) -> AMQPConnection:
    name = request.match_info["name"]
    for conn in _connections(request):
        if conn.name == name:
            return conn
    raise not_found()


PACE = 500  # objects rendered between yields to the loop


async def paced(render: Callable[[T], dict[str, Any]], objects: Iterable[T]) -> list[dict[str, Any]]:
    """Render many objects without holding the loop: yield every PACE objects (each object is read
    consistently; the list is a snapshot of what existed when the request began)."""
    out: list[dict[str, Any]] = []
    for i, obj in enumerate(list(objects)):
        if i and not i % PACE:
            await asyncio.sleep(0)
        out.append(render(obj))
    return out


async def _paced(items: list[dict[str, Any]], request: web.Request) -> web.Response:
    return ok(listing.apply(items, request.query))


def kafka_connections(request: web.Request) -> list[dict[str, Any]]:
    """Kafka clients, listed with protocol "Kafka" (FerryMQ extension; read-only, no vhost)."""
    kafka = request.app[PLANE].kafka
    out: list[dict[str, Any]] = []
    for conn in list(kafka.connections) if kafka is not None else []:
        transport = getattr(conn, "transport", None)
        peer = transport.get_extra_info("peername") if transport is not None else None
        local = transport.get_extra_info("sockname") if transport is not None else None
        if not peer or not local:
            continue
        out.append({"name": f"{peer[0]}:{peer[1]} -> {local[0]}:{local[1]}", "node": NODE,
                    "type": "network", "protocol": "Kafka", "user": "", "vhost": None,
                    "host": local[0], "port": local[1], "peer_host": peer[0], "peer_port": peer[1],
                    "state": "running", "channels": 0, **tls_details(transport),
                    "client_properties": {"client_id": conn.peer_client_id}})
    return out


@routes.get("/api/connections")
async def list_connections(request: web.Request) -> web.Response:
    items = await paced(connection_json, _connections(request))
    return await _paced(items + kafka_connections(request), request)


@routes.get("/api/vhosts/{vhost}/connections")
async def vhost_connections(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    if vhost not in request.app[PLANE].broker.vhosts:
        raise not_found()
    conns = [c for c in _connections(request) if c.vhost is not None and c.vhost.name == vhost]
    return await _paced(await paced(connection_json, conns), request)


@routes.get("/api/connections/{name}")
async def get_connection(request: web.Request) -> web.Response:
    return ok(connection_json(_find(request)))


@routes.delete("/api/connections/{name}")
async def close_connection(request: web.Request) -> web.Response:
    conn = _find(request)
    reason = request.headers.get("X-Reason", DEFAULT_REASON)
    conn.codec.close_connection(CONNECTION_FORCED, f"CONNECTION_FORCED - {reason}", 0, 0)
    conn.write_out()
    return no_content()


@routes.get("/api/connections/{name}/channels")
async def connection_channels(request: web.Request) -> web.Response:
    conn = _find(request)
    return await _paced([channel_json(conn, ch) for ch in conn.channels.values()], request)


@routes.get("/api/channels")
async def list_channels(request: web.Request) -> web.Response:
    pairs = [(c, ch) for c in _connections(request) for ch in c.channels.values()]
    return await _paced(await paced(lambda p: channel_json(*p), pairs), request)


@routes.get("/api/channels/{name}")
async def get_channel(request: web.Request) -> web.Response:
    for conn in _connections(request):
        for ch in conn.channels.values():
            if f"{conn.name} ({ch.number})" == request.match_info["name"]:
                return ok(channel_json(conn, ch))
    raise not_found()


async def _consumers(request: web.Request, vhost: str | None) -> list[dict[str, Any]]:
    triples = [(conn, ch, c) for conn in _connections(request)
               for ch in conn.channels.values() if vhost is None or ch.vhost.name == vhost
               for c in ch.consumers.values()]
    return await paced(lambda t: consumer_json(*t), triples)


@routes.get("/api/consumers")
async def list_consumers(request: web.Request) -> web.Response:
    return await _paced(await _consumers(request, None), request)


@routes.get("/api/consumers/{vhost}")
async def vhost_consumers(request: web.Request) -> web.Response:
    vhost = request.match_info["vhost"]
    if vhost not in request.app[PLANE].broker.vhosts:
        raise not_found()
    return await _paced(await _consumers(request, vhost), request)
