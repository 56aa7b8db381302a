"""Routing across exchanges: ``resolve`` follows exchange-to-exchange bindings and alternate
exchanges as RabbitMQ's ``rabbit_exchange:route`` does. Each exchange is visited once per publish,
and an exchange whose own bindings match nothing hands the message to its alternate exchange. It can
explain itself (which bindings matched, which alternates were used): the dashboard's routing
explainer calls this same code with ``explain=True``, never a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.exchange.binding import Binding
from ferrymq.core.exchange.kinds import Exchange


@dataclass(slots=True)
class Route:
    """Where one publish goes. ``trace`` is filled only when resolve is asked to explain."""

    queues: list[str] = field(default_factory=list)  # each once, in the order first reached
    trace: list[Binding] = field(default_factory=list)  # every matching binding, in visit order
    via_alternate: list[str] = field(default_factory=list)  # alternate exchanges used


def resolve(
    start: Exchange, routing_key: str, headers: dict[str, Any] | None,
    lookup: Callable[[str], Exchange | None], *, explain: bool = False,
) -> Route:
    """Queues a publish to ``start`` reaches, following exchange bindings and alternates.

    Fast path (the per-message common case): no exchange bindings on ``start`` and either a
    match or no alternate exchange -- one index lookup, no walk, no trace.
    """
    if not explain and not start.has_exchange_bindings:
        queues = start.route_queues(routing_key, headers)
        if queues or start.alternate is None:
            return Route(queues, [], [])
    return _walk(start, routing_key, headers, lookup, explain)


def _walk(
    start: Exchange, routing_key: str, headers: dict[str, Any] | None,
    lookup: Callable[[str], Exchange | None], explain: bool,
) -> Route:
    """Depth-first in binding order, each exchange visited once (cycles end there). An exchange
    whose own bindings match nothing passes the message on to its alternate, if that exists.
    Iterative, so long chains cannot hit the recursion limit."""
    route = Route()
    queues: dict[str, None] = {}
    visited = {start.name}
    stack: list[Iterator[Binding]] = []

    def enter(ex: Exchange | None) -> None:
        while ex is not None:
            matched = ex.route(routing_key, headers)
            if matched:
                stack.append(iter(matched))
                return
            ex = _next_exchange(ex.alternate, visited, lookup)
            if ex is not None:
                route.via_alternate.append(ex.name)

    enter(start)
    while stack:
        b = next(stack[-1], None)
        if b is None:
            stack.pop()
            continue
        if explain:
            route.trace.append(b)
        if b.destination_is_exchange:
            enter(_next_exchange(b.destination, visited, lookup))
        else:
            queues[b.destination] = None
    route.queues = list(queues)
    return route


def _next_exchange(
    name: str | None, visited: set[str], lookup: Callable[[str], Exchange | None]
) -> Exchange | None:
    """The exchange to visit next, or None if there is none, it is missing, or already seen."""
    if name is None or name in visited:
        return None
    visited.add(name)
    return lookup(name)
