"""Exchanges and routing: direct, fanout, topic, headers and x-delayed-message.

An exchange maps (routing key, headers) to the bindings that match. ``resolve`` follows
exchange-to-exchange bindings and alternate exchanges, visiting each exchange once per publish,
and can explain itself: which bindings matched, and which alternates were used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.topic import TopicTrie
from ferrymq.errors import CommandInvalid, PreconditionFailed

DELAYED_INNER_TYPES = ("direct", "fanout", "topic", "headers")


@dataclass(frozen=True, slots=True)
class Binding:
    source: str
    destination: str
    destination_is_exchange: bool
    routing_key: str
    arguments: tuple[tuple[str, Any], ...] = ()

    def args(self) -> dict[str, Any]:
        return dict(self.arguments)


class Exchange:
    type = ""

    def __init__(
        self, name: str, durable: bool, auto_delete: bool, internal: bool,
        arguments: dict[str, Any],
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments
        self._bindings: dict[Binding, None] = {}  # ordered set
        self.alternate: str | None = _alternate(arguments)

    def bind(self, b: Binding) -> bool:
        if b in self._bindings:
            return False
        self._bindings[b] = None
        self._added(b)
        return True

    def unbind(self, b: Binding) -> bool:
        if b not in self._bindings:
            return False
        del self._bindings[b]
        self._removed(b)
        return True

    def bindings(self) -> list[Binding]:
        return list(self._bindings)

    def has_bindings(self) -> bool:
        return bool(self._bindings)

    def _added(self, b: Binding) -> None:
        """Index a new binding (subclasses keep their own lookup structure)."""

    def _removed(self, b: Binding) -> None:
        """Drop a binding from the subclass index."""

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        raise NotImplementedError


class DirectExchange(Exchange):
    type = "direct"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._by_key: dict[str, list[Binding]] = {}

    def _added(self, b: Binding) -> None:
        self._by_key.setdefault(b.routing_key, []).append(b)

    def _removed(self, b: Binding) -> None:
        found = self._by_key[b.routing_key]
        found.remove(b)
        if not found:
            del self._by_key[b.routing_key]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return self._by_key.get(routing_key, [])


class FanoutExchange(Exchange):
    type = "fanout"

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return list(self._bindings)


class TopicExchange(Exchange):
    type = "topic"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._trie = TopicTrie()

    def _added(self, b: Binding) -> None:
        self._trie.add(b.routing_key, b)

    def _removed(self, b: Binding) -> None:
        self._trie.remove(b.routing_key, b)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        matched = self._trie.match(routing_key)
        return [b for b in self._bindings if b in matched]


class HeadersExchange(Exchange):
    type = "headers"

    def bind(self, b: Binding) -> bool:
        mode = b.args().get("x-match", "all")
        if isinstance(mode, bytes):
            mode = mode.decode()
        if mode not in ("all", "any", "all-with-x", "any-with-x"):
            raise PreconditionFailed(
                f"Invalid x-match field value {mode!r}; expected all, any, all-with-x, or any-with-x"
            )
        return super().bind(b)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return [b for b in self._bindings if headers_match(b.args(), headers or {})]


def headers_match(binding_args: dict[str, Any], headers: dict[str, Any]) -> bool:
    """RabbitMQ's x-match: "x-" keys are ignored unless the mode ends in -with-x; a binding
    value of None (void) matches on presence alone."""
    mode = binding_args.get("x-match", "all")
    if isinstance(mode, bytes):
        mode = mode.decode()
    with_x = mode.endswith("-with-x")
    wanted = {k: v for k, v in binding_args.items()
              if k != "x-match" and (with_x or not k.startswith("x-"))}
    if mode.startswith("any"):
        return any(_header_equal(headers, k, v) for k, v in wanted.items())
    return all(_header_equal(headers, k, v) for k, v in wanted.items())


def _header_equal(headers: dict[str, Any], key: str, value: Any) -> bool:
    if key not in headers:
        return False
    if value is None:
        return True
    other = headers[key]
    return type(other) is type(value) and other == value


class DelayedExchange(Exchange):
    """x-delayed-message: routes like its x-delayed-type once the x-delay header has passed."""

    type = "x-delayed-message"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        inner = self.arguments.get("x-delayed-type")
        if isinstance(inner, bytes):
            inner = inner.decode()
        if inner not in DELAYED_INNER_TYPES:
            raise PreconditionFailed("Invalid argument, 'x-delayed-type' must be an existing exchange type")
        self.inner = EXCHANGE_TYPES[inner](self.name, self.durable, self.auto_delete,
                                           self.internal, {})

    def _added(self, b: Binding) -> None:
        self.inner.bind(b)

    def _removed(self, b: Binding) -> None:
        self.inner.unbind(b)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return self.inner.route(routing_key, headers)


EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    "direct": DirectExchange,
    "fanout": FanoutExchange,
    "topic": TopicExchange,
    "headers": HeadersExchange,
    "x-delayed-message": DelayedExchange,
}


def make_exchange(
    name: str, type_: str, durable: bool, auto_delete: bool, internal: bool,
    arguments: dict[str, Any],
) -> Exchange:
    cls = EXCHANGE_TYPES.get(type_)
    if cls is None:
        raise CommandInvalid(f"unknown exchange type '{type_}'")
    return cls(name, durable, auto_delete, internal, dict(arguments))


def equivalent(
    ex: Exchange, type_: str, durable: bool, auto_delete: bool, internal: bool,
    arguments: dict[str, Any], vhost: str,
) -> None:
    """A redeclare must match what exists, or it is a 406 (RabbitMQ's texts)."""
    where = f"for exchange '{ex.name}' in vhost '{vhost}'"
    for key, new, old in (("type", type_, ex.type), ("durable", durable, ex.durable),
                          ("auto_delete", auto_delete, ex.auto_delete),
                          ("internal", internal, ex.internal)):
        if new != old:
            raise PreconditionFailed(
                f"inequivalent arg '{key}' {where}: received '{_show(new)}' but current is "
                f"'{_show(old)}'"
            )
    if _alternate(arguments) != ex.alternate:
        raise PreconditionFailed(
            f"inequivalent arg 'alternate-exchange' {where}: received "
            f"{_show_arg(_alternate(arguments))} but current is {_show_arg(ex.alternate)}"
        )


def _alternate(arguments: dict[str, Any]) -> str | None:
    ae = arguments.get("alternate-exchange")
    return ae.decode() if isinstance(ae, bytes) else ae


def _show(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _show_arg(value: str | None) -> str:
    return "none" if value is None else f"the value '{value}' of type 'longstr'"


@dataclass(slots=True)
class Route:
    queues: list[str] = field(default_factory=list)
    trace: list[Binding] = field(default_factory=list)
    via_alternate: list[str] = field(default_factory=list)


def resolve(
    start: Exchange, routing_key: str, headers: dict[str, Any] | None,
    lookup: Callable[[str], Exchange | None], *, explain: bool = False,
) -> Route:
    """Where a publish to ``start`` goes: queues (each once), following e2e bindings and AEs."""
    matched = start.route(routing_key, headers)
    if (len(matched) == 1 and not matched[0].destination_is_exchange and not explain):
        return Route([matched[0].destination])  # the common case: one queue, no detours
    route = Route()
    seen_queues: set[str] = set()
    visited: set[str] = set()
    _visit(start, routing_key, headers, lookup, route, seen_queues, visited, matched)
    return route


def _visit(
    ex: Exchange, routing_key: str, headers: dict[str, Any] | None,
    lookup: Callable[[str], Exchange | None], route: Route, seen: set[str], visited: set[str],
    matched: list[Binding] | None = None,
) -> None:
    visited.add(ex.name)
    if matched is None:
        matched = ex.route(routing_key, headers)
    if not matched and ex.alternate and ex.alternate not in visited:
        alt = lookup(ex.alternate)
        if alt is not None:
            route.via_alternate.append(alt.name)
            _visit(alt, routing_key, headers, lookup, route, seen, visited)
        return
    for b in matched:
        route.trace.append(b)
        if not b.destination_is_exchange:
            if b.destination not in seen:
                seen.add(b.destination)
                route.queues.append(b.destination)
        elif b.destination not in visited:
            dest = lookup(b.destination)
            if dest is not None:
                _visit(dest, routing_key, headers, lookup, route, seen, visited)


def delay_ms(headers: dict[str, Any] | None) -> int:
    """The x-delay header in ms as the delayed-message plugin reads it; other types mean now."""
    value = (headers or {}).get("x-delay")
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)
