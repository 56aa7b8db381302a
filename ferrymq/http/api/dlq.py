"""Dead-letter queues: peek, and replay to the original queue."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
