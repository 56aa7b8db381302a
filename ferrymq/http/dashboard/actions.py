"""The dashboard's own small endpoints: what its buttons do, and the lists its pages show that the
live stream does not carry (connections and channels, Kafka topics and groups).

Every change goes through the core's own methods (purge, drop, publish, settle), then
``plane.end_turn()`` so deliveries and log writes go out. RabbitMQ's equivalents (DELETE
/api/queues/..., /api/connections/...) are the management API's; these live under /api/ferrymq/.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq import limits
from ferrymq.core import replay
from ferrymq.core.queue import Queue
from ferrymq.core.vhost import VHost
from ferrymq.errors import CONNECTION_FORCED
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import bad_request, error, ok, read_json

routes = web.RouteTableDef()


def vhost_of(plane: Plane, name: str) -> VHost:
    vhost = plane.broker.vhosts.get(name)
    if vhost is None:
        raise error(404, "not_found", f"no vhost '{name}'")
    return vhost


def queue_of(plane: Plane, request: web.Request) -> tuple[VHost, Queue]:
    vhost = vhost_of(plane, request.match_info["vhost"])
    queue = vhost.queues.get(request.match_info["queue"])
    if queue is None:
        raise error(404, "not_found", f"no queue '{request.match_info['queue']}' in vhost '{vhost.name}'")
    return vhost, queue


@routes.post("/api/ferrymq/queues/{vhost}/{queue}/move")
async def move(request: web.Request) -> web.Response:
    """{"to": queue, "count": n|null}: ready messages go to another queue, each settled here only
    once the target took it."""
    plane = request.app[PLANE]
    vhost, queue = queue_of(plane, request)
    body = await read_json(request)
    to = body.get("to") if isinstance(body, dict) else None
    target = vhost.queues.get(to) if isinstance(to, str) else None
    if target is None or target is queue:
        raise bad_request("'to' must name another existing queue")
    count = body.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise bad_request("'count' must be a non-negative integer or null")
    moved = replay.move(queue, target, count)
    plane.end_turn()
    return ok({"moved": moved, "source": queue.message_count, "target": target.message_count})


@routes.get("/api/ferrymq/dashboard/connections")
async def connections(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    out = []
    for conn in list(plane.amqp.connections)[:limits.HTTP_PAGE_SIZE_MAX]:
        props = conn.codec.client_properties
        out.append({
            "name": connection_name(plane, conn.peer), "peer": conn.peer, "user": conn.username,
            "vhost": conn.vhost.name if conn.vhost is not None else None, "protocol": "AMQP 0-9-1",
            "client": _text(props.get("product")) or "?", "client_version": _text(props.get("version")),
            "blocked": conn.blocked_sent,
            "channels": [{"number": n, "prefetch": ch.prefetch_consumer,
                          "global_prefetch": ch.prefetch_global, "unacked": ch.unacked_count,
                          "confirm": ch.confirm_mode}
                         for n, ch in sorted(conn.channels.items())],
        })
    return ok(out)


def connection_name(plane: Plane, peer: str) -> str:
    """RabbitMQ's connection name shape: "client ip:port -> server ip:port"."""
    return f"{peer} -> {plane.settings.host}:{plane.amqp.port}"


def _text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return value if isinstance(value, str) else None


@routes.post("/api/ferrymq/connections/close")
async def close_connection(request: web.Request) -> web.Response:
    """{"name": ..., "reason": ...}: the client gets connection.close 320 CONNECTION_FORCED with it."""
    plane = request.app[PLANE]
    body = await read_json(request)
    name = body.get("name") if isinstance(body, dict) else None
    reason = body.get("reason") or "Closed via the FerryMQ dashboard" if isinstance(body, dict) else ""
    if not isinstance(name, str) or not isinstance(reason, str):
        raise bad_request("'name' and 'reason' must be strings")
    for conn in list(plane.amqp.connections):
        if name in (conn.peer, connection_name(plane, conn.peer)):
            conn.codec.close_connection(CONNECTION_FORCED, f"CONNECTION_FORCED - {reason}"[:255], 0, 0)
            conn.write_out()
            return ok({"closed": name, "reason": reason})
    raise error(404, "not_found", f"no connection '{name}'")


@routes.get("/api/ferrymq/dashboard/kafka")
async def kafka(request: web.Request) -> web.Response:
    """Topics (partitions, offsets, retention) and consumer groups with lag per partition."""
    plane = request.app[PLANE]
    topics = []
    for name, topic in sorted(plane.streams.topics.topics.items())[:limits.HTTP_PAGE_SIZE_MAX]:
        spec = topic.spec
        topics.append({
            "name": name, "internal": topic.internal,
            "retention_ms": spec.config("retention.ms"), "retention_bytes": spec.config("retention.bytes"),
            "cleanup_policy": spec.config("cleanup.policy"),
            "partitions": [{"partition": i, "start": lg.start_offset, "end": lg.next_offset}
                           for i, lg in enumerate(topic.logs)],
        })
    return ok({"topics": topics, "groups": _groups(plane)})


def _groups(plane: Plane) -> list[dict[str, Any]]:
    if plane.kafka is None:
        return []
    registry = plane.streams.topics
    out = []
    for g in list(plane.kafka.coordinator.groups.values())[:limits.HTTP_PAGE_SIZE_MAX]:
        lags = []
        for (topic, partition), (offset, _meta) in sorted(g.offsets.items()):
            t = registry.get(topic)
            end = t.logs[partition].next_offset if t is not None and partition < len(t.logs) else offset
            lags.append({"topic": topic, "partition": partition, "committed": offset, "end": end,
                         "lag": max(0, end - offset)})
        out.append({"group": g.group_id, "state": g.state, "members": len(g.members), "offsets": lags})
    return out

