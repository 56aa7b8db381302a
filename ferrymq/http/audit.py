"""The HTTP plane's part of the audit log (ferrymq.server.audit): every request that changes
something under ``/api/`` (PUT, POST, DELETE; a definitions import too; the ``ferrymq`` CLI goes
through here), recorded after it is answered, refused ones included."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

from aiohttp import web

from ferrymq.http.auth import USER
from ferrymq.server.audit import AuditLog

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AUDIT = web.AppKey("audit", AuditLog)
CHANGES = frozenset(("PUT", "POST", "DELETE", "PATCH"))


def _claimed_user(request: web.Request) -> str:
    """Who the request said it was, when authentication refused it (basic auth's user part)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return ""
    try:
        return base64.b64decode(header[6:]).decode(errors="replace").split(":", 1)[0]
    except ValueError:
        return ""


def _peer(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return f"{peer[0]}:{peer[1]}" if peer else (request.remote or "?")


def _record(request: web.Request, status: int) -> None:
    audit = request.app.get(AUDIT)
    if audit is None:
        return
    user = request.get(USER)
    audit.record({
        "user": user if user is not None else _claimed_user(request),
        "authenticated": user is not None, "method": request.method, "path": request.rel_url.raw_path,
        "object": dict(request.match_info),  # the path's parts decoded: {"vhost": "/", "name": "q"}
        "query": request.query_string, "status": status, "result": "ok" if status < 400 else "refused",
        "peer": _peer(request), "agent": request.headers.get("User-Agent", ""),
    })


@web.middleware
async def audit(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in CHANGES or not request.path.startswith("/api/"):
        return await handler(request)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _record(request, exc.status)
        raise
    except BaseException:
        _record(request, 500)
        raise
    _record(request, response.status)
    return response
