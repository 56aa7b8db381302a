"""The dashboard's pages, its login, and its static assets (shipped as package data).

Every page is the same small HTML shell naming its page; ``static/app.js`` draws it from the live
stream and the management API (plus the one dashboard action in ``actions.py``). The pages are
public, the data is not: the shell asks ``/dashboard/login/status`` who is logged in and shows the
login form when nobody is. The form posts to ``/dashboard/login``, which checks the broker's users
and sets the ``ferrymq-auth`` cookie that ``ferrymq.http.auth`` accepts in place of a basic-auth
header (EventSource cannot send one).
"""

from __future__ import annotations

import base64
from pathlib import Path

from aiohttp import web

from ferrymq import limits
from ferrymq.errors import AccessRefused
from ferrymq.http.auth import COOKIE, credentials, is_loopback
from ferrymq.http.dashboard import actions, live
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import ok, read_json

STATIC = Path(__file__).parent / "static"
PAGES = ("overview", "queues", "routing", "traces", "dlq", "streams", "connections", "lab", "jobs")

routes = web.RouteTableDef()


def add_static(app: web.Application) -> None:
    live.install(app)
    app.router.add_routes(actions.routes)
    app.router.add_static("/dashboard/static/", STATIC)


@routes.get("/")
async def root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


@routes.get("/dashboard")
async def bare(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/dashboard/")


@routes.get("/dashboard/")
async def overview(request: web.Request) -> web.StreamResponse:
    return _page("overview")


@routes.get("/dashboard/{page}")
async def page(request: web.Request) -> web.StreamResponse:
    name = request.match_info["page"]
    if name not in PAGES:
        raise web.HTTPNotFound()
    return _page(name)


def _page(name: str) -> web.Response:
    html = (STATIC / "shell.html").read_text().replace("{{page}}", name).replace(
        "{{history}}", str(limits.HTTP_LIVE_HISTORY_POINTS))
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def _user(request: web.Request) -> str | None:
    creds = credentials(request)
    if creds is None:
        return None
    try:
        request.app[PLANE].broker.authenticate(*creds, loopback=is_loopback(request))
    except AccessRefused:
        return None
    return creds[0]


@routes.get("/dashboard/login/status")
async def status(request: web.Request) -> web.Response:
    return ok({"user": _user(request)})


@routes.post("/dashboard/login")
async def login(request: web.Request) -> web.Response:
    """Form or JSON {user, password}: 200 with the cookie set, or 401 with RabbitMQ's body."""
    if request.content_type == "application/json":
        data = await read_json(request)
        data = data if isinstance(data, dict) else {}
    else:
        data = dict(await request.post())
    user, password = str(data.get("user", "")), str(data.get("password", ""))
    try:
        request.app[PLANE].broker.authenticate(user, password, loopback=is_loopback(request))
    except AccessRefused:
        return web.json_response({"error": "not_authorized", "reason": "Login failed"}, status=401)
    response = ok({"user": user})
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
    return response


@routes.post("/dashboard/login/logout")
async def logout(request: web.Request) -> web.Response:
    response = ok({"user": None})
    response.del_cookie(COOKIE, path="/")
    return response
