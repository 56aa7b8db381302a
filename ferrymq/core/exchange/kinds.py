"""Exchange kinds: direct, fanout, topic, headers and x-delayed-message, each a binding index with
its own matching rule, plus declare and redeclare checks with RabbitMQ 3.10.8's texts.

An exchange maps (routing key, headers) to the bindings that match; following exchange-to-exchange
bindings and alternates is ``routing.resolve``'s job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from ferrymq.core.exchange.binding import Binding
from ferrymq.core.exchange.headers import HeaderRule, check_x_match, comparable, header_rule
from ferrymq.core.exchange.texts import amqp_type, bare, typed
from ferrymq.core.exchange.trie import TopicTrie
from ferrymq.errors import CommandInvalid, PreconditionFailed

DELAYED_TYPE = "x-delayed-message"
# Erlang's timer limit: the delayed-message plugin routes longer (or non-positive) delays at once.
DELAY_MAX_MS = 2**32 - 1
# RabbitMQ answers "invalid exchange type" for names that happen to be Erlang atoms in the node
# and "unknown exchange type" for the rest; these common ones were checked on RabbitMQ 3.10.8.
_ATOM_TYPE_NAMES = frozenset((
    "", "all", "amqp", "any", "bar", "basic", "binary", "binding", "classic", "debug", "default",
    "delay", "error", "event", "events", "exchange", "false", "foo", "hash", "info", "integer",
    "list", "log", "map", "match", "match_all", "message", "none", "normal", "ok", "publish",
    "queue", "quorum", "random", "rpc", "simple", "stream", "string", "test", "true", "undefined",
    "warning", "work", "x",
))
_INT_TEXT = re.compile(r"[+-]?[0-9]+")


class Exchange:
    """Bindings plus a matching rule. ``route`` returns matching bindings, each once; the lists
    returned may be the exchange's own, so callers must not mutate them."""

    type: ClassVar[str] = ""

    def __init__(
        self, name: str, durable: bool, auto_delete: bool, internal: bool,
        arguments: dict[str, Any],
    ) -> None:
        self.name = name
        self.durable = durable
        self.auto_delete = auto_delete
        self.internal = internal
        self.arguments = arguments
        self.alternate: str | None = _alternate(arguments)
        self._bindings: dict[Binding, int] = {}  # binding -> bind sequence (ordered set)
        self._seq = 0
        self._e2e = 0  # bindings to exchanges: zero means resolve can take its fast path

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} bindings={len(self._bindings)}>"

    def bind(self, b: Binding) -> bool:
        """Add a binding; False if it exists. Invalid arguments raise before anything changes."""
        if b in self._bindings:
            return False
        self._check_binding(b)
        seq = self._bindings[b] = self._seq
        self._seq += 1
        self._e2e += b.destination_is_exchange
        self._added(b, seq)
        return True

    def unbind(self, b: Binding) -> bool:
        seq = self._bindings.pop(b, None)
        if seq is None:
            return False
        self._e2e -= b.destination_is_exchange
        self._removed(b, seq)
        return True

    def bindings(self) -> list[Binding]:
        return list(self._bindings)

    def has_bindings(self) -> bool:
        return bool(self._bindings)

    @property
    def has_exchange_bindings(self) -> bool:
        return self._e2e > 0

    def _check_binding(self, b: Binding) -> None:
        """Reject a binding this type cannot hold (headers: a bad x-match)."""

    def _added(self, b: Binding, seq: int) -> None:
        """Index a new binding (subclasses keep their own lookup structure)."""

    def _removed(self, b: Binding, seq: int) -> None:
        """Drop a binding from the subclass index."""

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        raise NotImplementedError

    def route_queues(self, routing_key: str, headers: dict[str, Any] | None) -> list[str]:
        """Queue names matched, each once, in binding order; a fresh list. Only meaningful as the
        whole answer when the exchange has no exchange bindings (resolve's fast path)."""
        return _unique_queues(self.route(routing_key, headers))


def _unique_queues(bindings: list[Binding]) -> list[str]:
    return list(dict.fromkeys(b.destination for b in bindings if not b.destination_is_exchange))


class DirectExchange(Exchange):
    """Exact routing-key match: one dict lookup per publish."""

    type = "direct"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._by_key: dict[str, list[Binding]] = {}
        self._queues_by_key: dict[str, list[str]] = {}

    def _added(self, b: Binding, seq: int) -> None:
        found = self._by_key.setdefault(b.routing_key, [])
        found.append(b)
        self._queues_by_key[b.routing_key] = _unique_queues(found)

    def _removed(self, b: Binding, seq: int) -> None:
        found = self._by_key[b.routing_key]
        found.remove(b)
        if found:
            self._queues_by_key[b.routing_key] = _unique_queues(found)
        else:
            del self._by_key[b.routing_key]
            del self._queues_by_key[b.routing_key]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return self._by_key.get(routing_key, _NONE)

    def route_queues(self, routing_key: str, headers: dict[str, Any] | None) -> list[str]:
        queues = self._queues_by_key.get(routing_key)
        return queues.copy() if queues else []


_NONE: list[Binding] = []  # shared empty answer; never mutated


class FanoutExchange(Exchange):
    """Every binding matches; the answer is kept ready between binding changes."""

    type = "fanout"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._all: list[Binding] = []
        self._queues: list[str] = []

    def _added(self, b: Binding, seq: int) -> None:
        self._refresh()

    def _removed(self, b: Binding, seq: int) -> None:
        self._refresh()

    def _refresh(self) -> None:
        self._all = list(self._bindings)
        self._queues = _unique_queues(self._all)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return self._all

    def route_queues(self, routing_key: str, headers: dict[str, Any] | None) -> list[str]:
        return self._queues.copy()


class TopicExchange(Exchange):
    """``*`` and ``#`` patterns through a TopicTrie; matches come back in binding order."""

    type = "topic"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._trie = TopicTrie()
        self._by_seq: dict[int, Binding] = {}  # the trie holds ints: cheap to hash and sort

    def _added(self, b: Binding, seq: int) -> None:
        self._trie.add(b.routing_key, seq)
        self._by_seq[seq] = b

    def _removed(self, b: Binding, seq: int) -> None:
        self._trie.remove(b.routing_key, seq)
        del self._by_seq[seq]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        by_seq = self._by_seq
        seqs: list[int] = sorted(self._trie.match(routing_key))  # type: ignore[arg-type]  # it holds ints
        return [by_seq[seq] for seq in seqs]


class HeadersExchange(Exchange):
    """x-match all / any (ignoring "x-" keys) and all-with-x / any-with-x; default all."""

    type = "headers"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._rules: dict[Binding, HeaderRule] = {}

    def _check_binding(self, b: Binding) -> None:
        check_x_match(b.arguments)

    def _added(self, b: Binding, seq: int) -> None:
        self._rules[b] = header_rule(b.arguments)

    def _removed(self, b: Binding, seq: int) -> None:
        del self._rules[b]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        if not self._rules:
            return []
        data = {k: comparable(v) for k, v in headers.items()} if headers else {}
        return [b for b, rule in self._rules.items() if rule.matches(data)]


# --- x-delayed-message ------------------------------------------------------------------------


class DelayedExchange(Exchange):
    """x-delayed-message: routes as its x-delayed-type. Holding a message until its x-delay has
    passed is the registry's job (``delay_ms`` + a DelayQueue); routing here is immediate."""

    type = DELAYED_TYPE

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        inner = _delayed_inner_type(self.arguments)
        self.inner: Exchange = EXCHANGE_TYPES[inner](
            self.name, self.durable, self.auto_delete, self.internal, {})

    def _check_binding(self, b: Binding) -> None:
        self.inner._check_binding(b)

    def _added(self, b: Binding, seq: int) -> None:
        self.inner.bind(b)

    def _removed(self, b: Binding, seq: int) -> None:
        self.inner.unbind(b)

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        return self.inner.route(routing_key, headers)

    def route_queues(self, routing_key: str, headers: dict[str, Any] | None) -> list[str]:
        return self.inner.route_queues(routing_key, headers)


def _delayed_inner_type(arguments: Mapping[str, Any]) -> str:
    """The plugin's validate/1: x-delayed-type must name another existing exchange type."""
    inner = arguments.get("x-delayed-type")
    if isinstance(inner, bytes | bytearray):
        inner = bytes(inner).decode("utf-8", "replace")
    if not isinstance(inner, str):
        raise PreconditionFailed("Invalid argument, 'x-delayed-type' must be an existing exchange type")
    if inner == DELAYED_TYPE:
        raise PreconditionFailed("Invalid argument, 'x-delayed-message' can't be used for 'x-delayed-type'")
    return check_type(inner)


def delay_ms(headers: Mapping[str, Any] | None) -> int:
    """The x-delay header in ms as the delayed-message plugin reads it: integers, floats and
    decimals truncated, decimal-digit strings parsed. Anything else, or a delay outside
    1..DELAY_MAX_MS, is 0: route now (so a delivered message's negated x-delay never re-delays)."""
    value = _delay_int(headers.get("x-delay")) if headers else None
    return value if value is not None and 0 < value <= DELAY_MAX_MS else 0


def _delay_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        try:
            return int(value)
        except (OverflowError, ValueError):  # inf / nan: no Erlang float is either
            return None
    if isinstance(value, str) and _INT_TEXT.fullmatch(value):
        return int(value)
    return None


EXCHANGE_TYPES: dict[str, type[Exchange]] = {
    "direct": DirectExchange,
    "fanout": FanoutExchange,
    "topic": TopicExchange,
    "headers": HeadersExchange,
    DELAYED_TYPE: DelayedExchange,
}


# --- declare and redeclare --------------------------------------------------------------------


def check_type(type_: str) -> str:
    """An exchange type must be known: 503 COMMAND_INVALID otherwise (connection-level). RabbitMQ
    checks this before anything else in exchange.declare, even on a redeclare."""
    if type_ in EXCHANGE_TYPES:
        return type_
    word = "invalid" if type_ in _ATOM_TYPE_NAMES else "unknown"
    raise CommandInvalid(f"{word} exchange type '{type_}'")


def make_exchange(
    name: str, type_: str, durable: bool, auto_delete: bool, internal: bool,
    arguments: Mapping[str, Any], *, vhost: str = "/",
) -> Exchange:
    """A new exchange, validated as exchange.declare does: type, then alternate-exchange's type,
    then the type's own arguments (x-delayed-type)."""
    cls = EXCHANGE_TYPES[check_type(type_)]
    ae = arguments.get("alternate-exchange")
    if ae is not None and not isinstance(ae, str):
        raise PreconditionFailed(
            f"invalid type '{amqp_type(ae)}' for arg 'alternate-exchange' in exchange '{name}' "
            f"in vhost '{vhost}'"
        )
    return cls(name, durable, auto_delete, internal, dict(arguments))


def equivalent(
    existing: Exchange, type_: str, durable: bool, auto_delete: bool, internal: bool,
    arguments: Mapping[str, Any], vhost: str,
) -> None:
    """A redeclare must match what exists (type, flags, alternate-exchange), or it is a 406 with
    RabbitMQ's text; other arguments may differ freely."""
    check_type(type_)
    where = f"for exchange '{existing.name}' in vhost '{vhost}'"
    for key, new, old in (("type", type_, existing.type), ("durable", durable, existing.durable),
                          ("auto_delete", auto_delete, existing.auto_delete),
                          ("internal", internal, existing.internal)):
        if new != old:
            raise PreconditionFailed(
                f"inequivalent arg '{key}' {where}: received {bare(new)} but current is {bare(old)}"
            )
    key = "alternate-exchange"
    new_ae, old_ae = arguments.get(key), existing.arguments.get(key)
    if comparable(new_ae) == comparable(old_ae):
        return
    both = new_ae is not None and old_ae is not None
    received = bare(new_ae) if both else typed(new_ae)
    current = bare(old_ae) if both else typed(old_ae)
    raise PreconditionFailed(
        f"inequivalent arg '{key}' {where}: received {received} but current is {current}"
    )


def _alternate(arguments: Mapping[str, Any]) -> str | None:
    ae = arguments.get("alternate-exchange")
    if isinstance(ae, bytes | bytearray):
        return bytes(ae).decode("utf-8", "replace")
    return ae if isinstance(ae, str) else None
