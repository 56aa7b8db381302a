"""/api/definitions (and /{vhost}): export (ferrymq.http.api.definitions_export) and import
(ferrymq.core.definitions) in RabbitMQ 3.10's JSON format.

The import answers as RabbitMQ does, 204, when it kept everything; when it dropped something it
answers 200 with ``{"dropped": [{"section", "name", "vhost"?, "reason"}]}`` (a FerryMQ
extension: RabbitMQ has no such report). A file it cannot import is a 400 with one line of reason.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq.core.definitions import DefinitionsError, import_definitions
from ferrymq.http.api.definitions_export import export_all, export_vhost
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import bad_request, no_content, not_found, ok, read_json

routes = web.RouteTableDef()


@routes.get("/api/definitions")
async def get_all(request: web.Request) -> web.Response:
    return ok(await export_all(request.app[PLANE]))


@routes.get("/api/definitions/{vhost}")
async def get_vhost(request: web.Request) -> web.Response:
    plane = request.app[PLANE]
    vhost = plane.broker.vhosts.get(request.match_info["vhost"])
    if vhost is None:
        raise not_found()
    return ok(await export_vhost(plane, vhost))


async def _import(request: web.Request, only: str | None) -> web.Response:
    plane = request.app[PLANE]
    body = await read_json(request)
    if only is not None and only not in plane.broker.vhosts:
        raise not_found()
    try:
        report = import_definitions(plane.broker, body, only)
    except DefinitionsError as exc:
        raise bad_request(str(exc)) from None
    finally:
        plane.end_turn()
    return ok({"dropped": report.dropped}) if report.dropped else no_content()


@routes.post("/api/definitions")
async def post_all(request: web.Request) -> web.Response:
    return await _import(request, None)


@routes.post("/api/definitions/{vhost}")
async def post_vhost(request: web.Request) -> web.Response:
    return await _import(request, request.match_info["vhost"])
