"""/api/health/checks/..., /api/aliveness-test/{vhost}."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
