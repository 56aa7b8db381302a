"""/api/queues: list, get, declare (PUT), delete, purge, get messages, bindings of a queue."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
