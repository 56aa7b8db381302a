"""Header matching for headers exchanges: x-match all / any (ignoring "x-" keys) and all-with-x /
any-with-x, with values compared as RabbitMQ compares Erlang terms, not as Python compares objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ferrymq.core.exchange.binding import freeze, freeze_args
from ferrymq.core.exchange.texts import amqp_type, erlang_term
from ferrymq.errors import PreconditionFailed

X_MATCH_MODES = ("all", "any", "all-with-x", "any-with-x")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

class _Present:
    """A void binding value: the header must be there, with any value."""

    __slots__ = ()


_PRESENT = _Present()


@dataclass(frozen=True, slots=True)
class HeaderRule:
    any_mode: bool
    wanted: tuple[tuple[str, Any], ...]  # (key, comparable value or _PRESENT)

    def matches(self, data: dict[str, Any]) -> bool:
        """RabbitMQ's merge walk as set logic: all -> every key hits, any -> one does."""
        for key, value in self.wanted:
            hit = key in data and (value is _PRESENT or data[key] == value)
            if hit is self.any_mode:
                return hit
        return not self.any_mode


def header_rule(arguments: tuple[tuple[str, Any], ...]) -> HeaderRule:
    args = dict(arguments)
    mode = args.get("x-match", "all")
    mode = mode if mode in X_MATCH_MODES else "all"
    with_x = mode.endswith("-with-x")
    wanted = tuple(
        (k, _PRESENT if v is None else comparable(v)) for k, v in arguments
        if k != "x-match" and (with_x or not k.startswith("x-"))
    )
    return HeaderRule(mode.startswith("any"), wanted)


def comparable(value: Any) -> Any:
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
    return freeze(value)


def headers_match(binding_args: Mapping[str, Any], headers: Mapping[str, Any] | None) -> bool:
    """Whether a headers binding with these arguments matches a message's headers."""
    data = {k: comparable(v) for k, v in (headers or {}).items()}
    return header_rule(freeze_args(binding_args)).matches(data)

def check_x_match(arguments: tuple[tuple[str, Any], ...]) -> None:
    """A headers binding's x-match must be one of the four modes, as a longstr (406 otherwise)."""
    for key, mode in arguments:
        if key != "x-match":
            continue
        if not isinstance(mode, str):
            raise PreconditionFailed(
                f"Invalid x-match field type {amqp_type(mode)} (value {erlang_term(mode)}); "
                "expected longstr"
            )
        if mode not in X_MATCH_MODES:
            raise PreconditionFailed(
                f"Invalid x-match field value {erlang_term(mode)}; "
                "expected all, any, all-with-x, or any-with-x"
            )
