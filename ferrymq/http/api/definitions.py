"""/api/definitions: export and import in RabbitMQ's JSON format."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
