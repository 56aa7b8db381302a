"""/api/overview, /api/whoami, /api/vhosts, /api/users, /api/permissions."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
