"""The routing explainer: POST /api/ferrymq/route/{vhost}/{exchange}."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
