"""Exchanges and routing: direct, fanout, topic, headers and x-delayed-message.

An exchange maps (routing key, headers) to the bindings that match. ``resolve`` follows
exchange-to-exchange bindings and alternate exchanges as RabbitMQ's ``rabbit_exchange:route``
does: each exchange is visited once per publish, and an exchange whose own bindings match nothing
hands the message to its alternate exchange. It can explain itself: which bindings matched and
which alternates were used.

Texts and matching rules follow RabbitMQ 3.10.8, checked against a live node.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from ferrymq.core.topic import TopicTrie
from ferrymq.errors import CommandInvalid, PreconditionFailed

DELAYED_TYPE = "x-delayed-message"
X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
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
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- binding arguments: frozen so bindings are hashable --------------------------------------


class _Table(tuple):  # type: ignore[type-arg]
    """A frozen field table: sorted (key, value) pairs; thawed back to a dict."""

    __slots__ = ()


class _Array(tuple):  # type: ignore[type-arg]
    """A frozen field array; thawed back to a list."""

    __slots__ = ()


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _Table(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return _Array(_freeze(v) for v in value)
    return bytes(value) if isinstance(value, bytearray) else value


def _thaw(value: Any) -> Any:
    if isinstance(value, _Table):
        return {k: _thaw(v) for k, v in value}
    if isinstance(value, _Array):
        return [_thaw(v) for v in value]
    return value


def freeze_args(arguments: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Binding arguments as a hashable, key-sorted tuple (nested tables and arrays frozen too)."""
    if not arguments:
        return ()
    return tuple(sorted((k, _freeze(v)) for k, v in arguments.items()))


@dataclass(frozen=True, slots=True)
class Binding:
    """source -> destination under a key and arguments; equal fields mean the same binding."""

    source: str
    destination: str
    destination_is_exchange: bool
    routing_key: str
    arguments: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(
        cls, source: str, destination: str, destination_is_exchange: bool, routing_key: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> Binding:
        """Build a binding from a plain argument dict, freezing it."""
        return cls(source, destination, destination_is_exchange, routing_key,
                   freeze_args(arguments))

    def args(self) -> dict[str, Any]:
        """The arguments back as a plain dict (nested tables as dicts, arrays as lists)."""
        return {k: _thaw(v) for k, v in self.arguments}


# --- exchanges --------------------------------------------------------------------------------


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
        return [by_seq[seq] for seq in sorted(self._trie.match(routing_key))]  # type: ignore[type-var]


# --- headers ----------------------------------------------------------------------------------


class _Present:
    """A void binding value: the header must be there, with any value."""

    __slots__ = ()


_PRESENT = _Present()


@dataclass(frozen=True, slots=True)
class _HeaderRule:
    any_mode: bool
    wanted: tuple[tuple[str, Any], ...]  # (key, comparable value or _PRESENT)

    def matches(self, data: dict[str, Any]) -> bool:
        """RabbitMQ's merge walk as set logic: all -> every key hits, any -> one does."""
        for key, value in self.wanted:
            hit = key in data and (value is _PRESENT or data[key] == value)
            if hit is self.any_mode:
                return hit
        return not self.any_mode


def _header_rule(arguments: tuple[tuple[str, Any], ...]) -> _HeaderRule:
    args = dict(arguments)
    mode = args.get("x-match", "all")
    mode = mode if mode in X_MATCH_MODES else "all"
    with_x = mode.endswith("-with-x")
    wanted = tuple(
        (k, _PRESENT if v is None else _comparable(v)) for k, v in arguments
        if k != "x-match" and (with_x or not k.startswith("x-"))
    )
    return _HeaderRule(mode.startswith("any"), wanted)


def _comparable(value: Any) -> Any:
    """A header value as RabbitMQ compares it: by Erlang term, ignoring the top-level AMQP type.
    So longstr "a" equals byte array "a", 1 equals 1.0 and a timestamp equals its seconds, but a
    bool is never a number and a decimal never equals an int. Nested values keep their types."""
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return int((aware - _EPOCH).total_seconds())
    if isinstance(value, Decimal):
        sign, digits, exponent = value.as_tuple()
        if not isinstance(exponent, int):
            return (Decimal, str(value))
        unscaled = int("".join(map(str, digits)) or "0")
        return (Decimal, -exponent, -unscaled if sign else unscaled)
    return _freeze(value)


def headers_match(binding_args: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bool:
    """Whether a headers binding with these arguments matches a message's headers."""
    data = {k: _comparable(v) for k, v in (headers or {}).items()}
    return _header_rule(freeze_args(binding_args)).matches(data)


class HeadersExchange(Exchange):
    """x-match all / any (ignoring "x-" keys) and all-with-x / any-with-x; default all."""

    type = "headers"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._rules: dict[Binding, _HeaderRule] = {}

    def _check_binding(self, b: Binding) -> None:
        check_x_match(b.arguments)

    def _added(self, b: Binding, seq: int) -> None:
        self._rules[b] = _header_rule(b.arguments)

    def _removed(self, b: Binding, seq: int) -> None:
        del self._rules[b]

    def route(self, routing_key: str, headers: dict[str, Any] | None) -> list[Binding]:
        if not self._rules:
            return []
        data = {k: _comparable(v) for k, v in headers.items()} if headers else {}
        return [b for b, rule in self._rules.items() if rule.matches(data)]


def check_x_match(arguments: tuple[tuple[str, Any], ...]) -> None:
    """A headers binding's x-match must be one of the four modes, as a longstr (406 otherwise)."""
    for key, mode in arguments:
        if key != "x-match":
            continue
        if not isinstance(mode, str):
            raise PreconditionFailed(
                f"Invalid x-match field type {_amqp_type(mode)} (value {_erlang_term(mode)}); "
                "expected longstr"
            )
        if mode not in X_MATCH_MODES:
            raise PreconditionFailed(
                f"Invalid x-match field value {_erlang_term(mode)}; "
                "expected all, any, all-with-x, or any-with-x"
            )


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
            f"invalid type '{_amqp_type(ae)}' for arg 'alternate-exchange' in exchange '{name}' "
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
                f"inequivalent arg '{key}' {where}: received {_bare(new)} but current is {_bare(old)}"
            )
    key = "alternate-exchange"
    new_ae, old_ae = arguments.get(key), existing.arguments.get(key)
    if _comparable(new_ae) == _comparable(old_ae):
        return
    both = new_ae is not None and old_ae is not None
    received = _bare(new_ae) if both else _typed(new_ae)
    current = _bare(old_ae) if both else _typed(old_ae)
    raise PreconditionFailed(
        f"inequivalent arg '{key}' {where}: received {received} but current is {current}"
    )


def _alternate(arguments: Mapping[str, Any]) -> str | None:
    ae = arguments.get("alternate-exchange")
    if isinstance(ae, bytes | bytearray):
        return bytes(ae).decode("utf-8", "replace")
    return ae if isinstance(ae, str) else None


# --- how RabbitMQ prints values in its error texts ---------------------------------------------


def _amqp_type(value: Any) -> str:
    """The AMQP field type name RabbitMQ reports for a decoded value (ints by range)."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (str, "longstr"), ((bytes, bytearray), "binary"), (float, "double"),
        (Decimal, "decimal"), (datetime, "timestamp"), (dict, "table"), (list, "array"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


_ERLANG_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _erlang_term(value: Any) -> str:
    """Erlang's ~tp rendering of common values: <<"text">> for printable binaries (<<1,2>> for
    others, <<>> when empty), true/false, numbers."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | bytes | bytearray):
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        text = raw.decode("utf-8", "replace")
        if raw and "\ufffd" not in text and text.translate(_ERLANG_ESCAPES).isprintable():
            return f'<<"{text.translate(_ERLANG_ESCAPES)}">>'
        return "<<" + ",".join(map(str, raw)) + ">>"
    return "undefined" if value is None else str(value)


def _bare(value: Any) -> str:
    """rabbit_misc:val/1 for a plain value: 'true', 'direct', 'a'."""
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return f"'{value}'"


def _typed(value: Any) -> str:
    """rabbit_misc:val/1 for a table entry: none, or the value 'a' of type 'longstr'."""
    if value is None:
        return "none"
    return f"the value {_bare(value)} of type '{_amqp_type(value)}'"


# --- routing across exchanges -----------------------------------------------------------------


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
    if not explain and not start._e2e:
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
