"""Dead-letter queues: list them, peek at their messages, replay them to the original queue.

A queue is a dead-letter queue when some queue's dead-letter exchange and key route to it (found
with the routing explainer's code, the publish path's own routing), or when it holds messages
with an ``x-death`` header at its head. Replay and peek are ``ferrymq.core.replay``.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ferrymq import limits
from ferrymq.core import replay
from ferrymq.core.vhost import VHost
from ferrymq.http.dashboard import jobs_store, jobs_view
from ferrymq.http.dashboard.actions import queue_of
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, ok, read_json
from ferrymq.jobs.message import JobMessage

routes = web.RouteTableDef()


@routes.get("/api/ferrymq/dlq")
async def dlq_list(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    out = []
    for vname, vhost in list(plane.broker.vhosts.items()):
        sources = vhost.dead_letter_sources()
        await asyncio.sleep(0)
        for name in sorted(set(sources) | _holding_dead_letters(vhost)):
            queue = vhost.queues.get(name)
            if queue is not None:
                out.append({"vhost": vname, "name": name, "messages": queue.message_count,
                            "sources": sorted(sources.get(name, []))})
    return ok(out)


def _holding_dead_letters(vhost: VHost) -> set[str]:
    """Queues whose head message died elsewhere (a DLQ fed by a source since deleted); a replayed
    message, back in the queue it died in, does not make that queue a DLQ."""
    found = set()
    for queue in vhost.queues.values():
        head = next(iter(queue.ready_entries()), None) if queue.ready_count else None
        died = replay.origin(head.msg) if head is not None else None
        if died is not None and died[0] != queue.name:
            found.add(queue.name)
    return found


@routes.get("/api/ferrymq/dlq/{vhost}/{queue}/peek")
async def peek(request: web.Request) -> web.Response:
    _, queue = queue_of(request.app[PLANE], request)
    return ok(replay.peek(queue, peek_count(request, 10)))


def peek_count(request: web.Request, default: int) -> int:
    """``?count=N`` of a peek, at most DLQ_PEEK_MAX; a bad one is a 400."""
    try:
        count = int(request.query.get("count", str(default)))
    except ValueError:
        raise bad_request("count must be an integer") from None
    if count < 0:
        raise bad_request("count must not be negative")
    return min(count, limits.DLQ_PEEK_MAX)


@routes.post("/api/ferrymq/dlq/{vhost}/{queue}/replay")
async def replay_messages(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    vhost, queue = queue_of(plane, request)
    body = await read_json(request)
    count = body.get("count") if isinstance(body, dict) else None
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise bad_request("'count' must be a non-negative integer or null")
    jobs: list[JobMessage] = []  # a job goes back as `ferrymq jobs replay` sends it (attempt 0)
    result = replay.replay(vhost, queue, count, jobs_view.job_replay(plane.clock.now_ms(), jobs))
    plane.end_turn()
    await jobs_store.audit(request.app, jobs)
    return ok({"replayed": result.replayed, "before": result.before, "after": result.after})
