"""FerryMQ's own paths for the Kafka side: /api/ferrymq/kafka/topics, groups with lag."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
