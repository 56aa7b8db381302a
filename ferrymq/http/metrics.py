"""Prometheus /metrics (prometheus-client), with rabbitmq_prometheus's names where they exist."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
