"""Sampled message traces: GET /api/ferrymq/traces."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
