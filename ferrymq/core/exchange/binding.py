"""Bindings: source -> destination under a key and arguments, hashable so an exchange can keep them
in a dict. Arguments are frozen (nested tables and arrays too) because a binding's identity in
RabbitMQ includes them: the same key with other arguments is another binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class _Table(tuple):  # type: ignore[type-arg]
    """A frozen field table: sorted (key, value) pairs; thawed back to a dict."""

    __slots__ = ()


class _Array(tuple):  # type: ignore[type-arg]
    """A frozen field array; thawed back to a list."""

    __slots__ = ()


def freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return _Table(sorted((k, freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return _Array(freeze(v) for v in value)
    return bytes(value) if isinstance(value, bytearray) else value


def thaw(value: Any) -> Any:
    if isinstance(value, _Table):
        return {k: thaw(v) for k, v in value}
    if isinstance(value, _Array):
        return [thaw(v) for v in value]
    return value


def freeze_args(arguments: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Binding arguments as a hashable, key-sorted tuple (nested tables and arrays frozen too)."""
    if not arguments:
        return ()
    return tuple(sorted((k, freeze(v)) for k, v in arguments.items()))


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
        return {k: thaw(v) for k, v in self.arguments}


