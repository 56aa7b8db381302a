"""The dashboard's own action with no management-API equivalent: moving ready messages between
queues. Everything else the pages read or do goes through the management API itself (/api/queues,
/api/connections, /api/channels, /api/ferrymq/kafka/..., /api/ferrymq/traces), so there is one way
to do each thing.

The move goes through the core's own method (``replay.move``), then ``plane.end_turn()`` so
deliveries and log writes go out.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq.core import replay
from ferrymq.core.queue import Queue
from ferrymq.core.vhost import VHost
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
