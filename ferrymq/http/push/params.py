"""The query string of a subscription, checked against the broker before any upgrade: a wrong
one gets one 4xx JSON error (RabbitMQ's body shape), never a half-open socket."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ferrymq.core.exchange import DELAYED_TYPE, Exchange
from ferrymq.core.vhost import VHost
from ferrymq.http.plane import PLANE
from ferrymq.http.push import bounds
from ferrymq.http.responses import bad_request, error

# Exchange types a binding key means something for; a headers exchange matches on headers instead.
KEYED_TYPES = frozenset({"direct", "topic", "fanout", DELAYED_TYPE})


@dataclass(frozen=True, slots=True)
class Target:
    vhost: VHost
    exchange: Exchange
    key: str


def target(request: web.Request) -> Target:
    """``?exchange=<name>&key=<binding key>[&vhost=<name>]`` as core objects, or a 4xx."""
    query = request.query
    missing = [name for name in ("exchange", "key") if name not in query]
    if missing:
        raise bad_request(f"missing query parameter(s): {', '.join(missing)} "
                          "(expected ?exchange=<name>&key=<binding key>[&vhost=<name>])")
    name, key, vname = query["exchange"], query["key"], query.get("vhost", "/")
    _check_length("exchange", name, bounds.EXCHANGE_MAX_BYTES)
    _check_length("key", key, bounds.KEY_MAX_BYTES)
    vhost = request.app[PLANE].broker.vhosts.get(vname)
    if vhost is None:
        raise error(404, "not_found", f"no vhost '{vname}'")
    if not name:
        raise bad_request("the default exchange cannot be subscribed to: name an exchange")
    exchange = vhost.exchanges.get(name)
    if exchange is None:
        raise error(404, "not_found", f"no exchange '{name}' in vhost '{vname}'")
    if exchange.type not in KEYED_TYPES:
        raise bad_request(f"exchange '{name}' is of type {exchange.type}: push subscribes by binding "
                          f"key, to {', '.join(sorted(KEYED_TYPES))} exchanges")
    return Target(vhost, exchange, key)


def _check_length(what: str, value: str, max_bytes: int) -> None:
    if len(value.encode()) > max_bytes:
        raise bad_request(f"{what} is longer than {max_bytes} bytes")
