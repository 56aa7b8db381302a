"""/api/exchanges: list, get, declare, delete, publish."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
