"""The lists permissions and topic permissions share (RabbitMQ 3.10's management API serves the same
three for each: every grant, one user's, one vhost's): grants keyed (vhost, user, ...) in the
broker, filtered here once for both nouns."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ferrymq.http import listing, lookup
from ferrymq.http.responses import not_found, ok

Grants = Mapping[Any, Any]  # (vhost, user, ...) -> the grant
ToJson = Callable[[Any, Any], dict[str, Any]]


def grants_json(grants: Grants, to_json: ToJson, vhost: str | None = None,
                user: str | None = None) -> list[dict[str, Any]]:
    """The grants of one vhost and/or user (None: any), as the API shows them."""
    return [to_json(key, grant) for key, grant in grants.items()
            if (vhost is None or key[0] == vhost) and (user is None or key[1] == user)]


def answer(request: web.Request, grants: Grants, to_json: ToJson) -> web.Response:
    """The list the route asks for: a ``{name}`` route is one user's (404 for a user not known), a
    ``{vhost}`` route one vhost's (404 likewise), else every grant; the usual list parameters apply."""
    broker, info = lookup.plane(request).broker, request.match_info
    user = info.get("name")
    if user is not None and user not in broker.users:
        raise not_found()
    vhost = lookup.vhost(request).name if "vhost" in info else None
    return ok(listing.apply(grants_json(grants, to_json, vhost=vhost, user=user), request.query))
