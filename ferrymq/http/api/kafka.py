"""The Kafka side, under FerryMQ's own paths (extensions: RabbitMQ has no such endpoints).

- ``GET /api/ferrymq/kafka/topics``: every topic: name, partitions, config (the topic's own
  settings), retention (ms and bytes, -1 unbounded), cleanup_policy (the effective one, default
  included), internal, bytes, and per partition its log start and end offsets and bytes.
- ``GET /api/ferrymq/kafka/topics/{name}``: one topic, same object.
- ``GET /api/ferrymq/kafka/groups``: every consumer group: group_id, state, protocol_type,
  protocol, generation, leader, members (member_id, client_id, client_host).
- ``GET /api/ferrymq/kafka/groups/{id}``: one group, plus ``offsets``: per committed partition the
  committed offset, the log end offset and the lag between them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.http import listing
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import not_found, ok

routes = web.RouteTableDef()


def _log_bytes(lg: Any) -> int:
    """A partition's bytes on disk (storage.StreamLog's ``size_bytes``; 0 for logs without it)."""
    return int(getattr(lg, "size_bytes", 0))


def topic_json(topic: Any) -> dict[str, Any]:
    spec = topic.spec
    parts = [{"partition": i, "log_start_offset": lg.start_offset, "log_end_offset": lg.next_offset,
              "bytes": _log_bytes(lg)} for i, lg in enumerate(topic.logs)]
    return {"name": spec.name, "partitions": spec.partitions, "internal": topic.internal,
            "config": dict(spec.configs),
            "retention": {"ms": spec.int_config("retention.ms"), "bytes": spec.int_config("retention.bytes")},
            "cleanup_policy": spec.config("cleanup.policy"),
            "bytes": sum(p["bytes"] for p in parts), "partition_details": parts}


def _topics(plane: Plane) -> list[Any]:
    registry = plane.streams.topics
    return [t for t in (registry.get(n) for n in registry.names()) if t is not None]


def group_json(group: Any) -> dict[str, Any]:
    return {"group_id": group.group_id, "state": group.state, "protocol_type": group.protocol_type,
            "protocol": group.protocol, "generation": group.generation, "leader": group.leader,
            "members": [{"member_id": m.member_id, "client_id": m.client_id, "client_host": m.host}
                        for m in group.members.values()]}


def _offsets(plane: Plane, group: Any) -> list[dict[str, Any]]:
    out = []
    for (topic, partition), (offset, metadata) in sorted(group.offsets.items()):
        t = plane.streams.topics.get(topic)
        end = t.logs[partition].next_offset if t is not None and partition < len(t.logs) else None
        out.append({"topic": topic, "partition": partition, "committed_offset": offset,
                    "log_end_offset": end, "lag": None if end is None else max(0, end - offset),
                    "metadata": metadata})
    return out


@routes.get("/api/ferrymq/kafka/topics")
async def list_topics(request: web.Request) -> web.Response:
    return ok(listing.apply([topic_json(t) for t in _topics(request.app[PLANE])], request.query))


@routes.get("/api/ferrymq/kafka/topics/{name}")
async def get_topic(request: web.Request) -> web.Response:
    topic = request.app[PLANE].streams.topics.get(request.match_info["name"])
    if topic is None:
        raise not_found()
    return ok(topic_json(topic))


def _groups(plane: Plane) -> dict[str, Any]:
    return plane.kafka.coordinator.groups if plane.kafka is not None else {}


@routes.get("/api/ferrymq/kafka/groups")
async def list_groups(request: web.Request) -> web.Response:
    items = [{**group_json(g), "name": g.group_id} for g in _groups(request.app[PLANE]).values()]
    return ok(listing.apply(items, request.query))


@routes.get("/api/ferrymq/kafka/groups/{id}")
async def get_group(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    group = _groups(plane).get(request.match_info["id"])
    if group is None:
        raise not_found()
    return ok({**group_json(group), "offsets": _offsets(plane, group)})
