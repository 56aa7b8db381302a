"""/api/connections, /api/channels, /api/consumers."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
