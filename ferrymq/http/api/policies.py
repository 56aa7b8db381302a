"""/api/policies: PUT/GET/DELETE, applied live to matching queues and exchanges."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
