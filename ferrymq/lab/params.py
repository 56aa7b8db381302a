"""A driver's parameters: a dataclass of defaults, filled from a scenario's ``[params]`` table and
the command line's ``--set key=value``, with a mistake reported as one line naming the key."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

P = TypeVar("P")


def _coerce(name: str, default: Any, value: Any) -> Any:
    """``value`` in the type of the default; strings from the command line are parsed."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        if kind is bool:
            if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(f"parameter {name!r}: expected true or false, got {value!r}")
            return value.lower() in ("true", "1", "yes")
        if kind is list:
            return [_coerce(name, default[0] if default else "", v) for v in value.split(",") if v]
        try:
            return kind(value)
        except ValueError:
            raise ValueError(f"parameter {name!r}: expected {kind.__name__}, got {value!r}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is list and isinstance(value, list):
        return [_coerce(name, default[0], v) for v in value] if default else value
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"parameter {name!r}: expected {kind.__name__}, got {value!r}")
    return value


def build(cls: type[P], values: dict[str, Any]) -> P:
    """An instance of the params dataclass ``cls``; unknown keys and wrong types are errors."""
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    defaults = cls()
    kwargs = {k: _coerce(k, getattr(defaults, k), v) for k, v in values.items()}
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:
        check()
    return obj


def as_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
