"""The dashboard's pages and static assets."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"

routes = web.RouteTableDef()


def add_static(app: web.Application) -> None:
    app.router.add_static("/dashboard/static/", STATIC)
