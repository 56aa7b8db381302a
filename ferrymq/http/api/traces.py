"""Sampled message traces: GET /api/ferrymq/traces (the core's ring, ferrymq.core.trace).

Contract (the dashboard reads it): ``{"sample_every": N, "capacity": C, "traces": [...]}``, newest
first; each trace ``{"id", "vhost", "exchange", "routing_key", "size", "events": [{"at_ms", "event",
"queue", "detail"}]}``. ``PUT /api/ferrymq/traces/config {"sample_every": N}`` (0 turns sampling
off; messages with the ``x-ferrymq-trace`` header are traced regardless); ``DELETE`` clears.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq import limits
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, no_content, not_found, ok, read_json

routes = web.RouteTableDef()


@routes.get("/api/ferrymq/traces")
async def list_traces(request: web.Request) -> web.Response:
    tracer = request.app[PLANE].broker.tracer
    return ok({"sample_every": tracer.sample_every, "capacity": tracer.capacity,
               "traces": [t.as_json() for t in tracer.newest_first()]})


@routes.put("/api/ferrymq/traces/config")
async def configure(request: web.Request) -> web.Response:
    body = await read_json(request)
    value = body.get("sample_every") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, int) or not (
            0 <= value <= limits.TRACE_SAMPLE_EVERY_MAX):
        raise bad_request(f"sample_every must be an integer 0..{limits.TRACE_SAMPLE_EVERY_MAX}")
    request.app[PLANE].broker.tracer.configure(value)
    return no_content()


@routes.delete("/api/ferrymq/traces")
async def clear(request: web.Request) -> web.Response:
    request.app[PLANE].broker.tracer.clear()
    return no_content()


@routes.get("/api/ferrymq/traces/{id}")
async def one_trace(request: web.Request) -> web.Response:
    raw = request.match_info["id"]
    trace = request.app[PLANE].broker.tracer.traces.get(int(raw)) if raw.isdigit() else None
    if trace is None:
        raise not_found()
    return ok(trace.as_json())
