"""/api/bindings: list, create, delete, exchange-to-exchange."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
