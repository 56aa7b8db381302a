"""/api/jobs/...: the ``ferrymq.jobs`` views of the dashboard's Jobs page (a FerryMQ extension).

GET /api/jobs/queues      per job queue: queued, running, retrying, delayed, dead, consumers
GET /api/jobs/states      per job name: jobs in each state (from the job store, when configured)
GET /api/jobs/retries     jobs waiting to retry (and jobs sent with a delay), earliest first; of
                          ``held`` delayed messages, ``scanned`` were looked at (a bound per vhost)
GET /api/jobs/dlq         per job queue: its DLQ and how many dead letters it holds
GET /api/jobs/dlq/{vhost}/{dlq}?count=N   the first N dead letters (job, id, attempts, error)
GET /api/jobs/crons       cron entries announced by workers: next runs, schedulers, leader
GET /api/jobs/workers     connected workers: queues, concurrency, running jobs, last heartbeat

Replaying a dead letter is POST /api/ferrymq/dlq/{vhost}/{dlq}/replay (``api/dlq.py``), which
replays a job as ``ferrymq jobs replay`` does. What each view reads is in
``ferrymq.http.dashboard.jobs_view`` and ``jobs_store``.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq import limits
from ferrymq.http.api.dlq import peek_count
from ferrymq.http.dashboard import jobs_store, jobs_view
from ferrymq.http.dashboard.actions import queue_of
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import ok

routes = web.RouteTableDef()


@routes.get("/api/jobs/queues")
async def queues(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    return ok(jobs_view.queue_rows(plane, (await jobs_view.held_jobs(plane)).rows))


@routes.get("/api/jobs/states")
async def states(request: web.Request) -> web.Response:
    url = request.app[PLANE].settings.jobs_store
    jobs, error = await jobs_store.read(request.app, "by_job")
    return ok({"store": jobs_store.redacted(url) if url else None, "error": error, "jobs": jobs or []})


@routes.get("/api/jobs/retries")
async def retries(request: web.Request) -> web.Response:
    found = await jobs_view.held_jobs(request.app[PLANE])
    return ok({"total": len(found.rows), "held": found.held, "scanned": found.scanned,
               "jobs": found.rows[: limits.HTTP_JOBS_ROWS_MAX]})


@routes.get("/api/jobs/dlq")
async def dlqs(request: web.Request) -> web.Response:
    rows = jobs_view.queue_rows(request.app[PLANE], [])
    return ok([{"vhost": r["vhost"], "queue": r["queue"], "dlq": r["dlq"], "messages": r["dead"]}
               for r in rows if r["dlq"] is not None])


@routes.get("/api/jobs/dlq/{vhost}/{queue}")
async def dead(request: web.Request) -> web.Response:
    _, queue = queue_of(request.app[PLANE], request)
    return ok({"dlq": queue.name, "messages": queue.message_count,
               "letters": jobs_view.dead_letters(queue, peek_count(request, 20))})


@routes.get("/api/jobs/crons")
async def crons(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    rows = jobs_view.cron_rows(plane, jobs_view.seen_workers(plane))
    scheduler, error = await jobs_store.read(request.app, "scheduler")
    for row in rows:
        row["last_fire_ms"] = scheduler["last_fires"].get(row["name"]) if scheduler else None
    return ok({"crons": rows, "leader": scheduler["leader"] if scheduler else None,
               "lease_expires_ms": scheduler["lease_expires_ms"] if scheduler else None, "error": error})


@routes.get("/api/jobs/workers")
async def workers(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    return ok(jobs_view.worker_rows(plane, jobs_view.seen_workers(plane)))
