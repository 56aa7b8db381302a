"""Durations as users write them: ``"30s"``, ``"10m"``, ``"1h"``, ``"1d"``, ``"250ms"``, or a
number of seconds. Every duration inside the job system is an int of milliseconds."""

from __future__ import annotations

import re

Duration = str | int | float
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def to_ms(value: Duration) -> int:
    """Milliseconds of ``value``. ``"1h30m"`` is 5,400,000."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration cannot be negative: {value!r}")
        return int(value * 1000)
    text = value.strip().lower()
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_MS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"not a duration: {value!r} (write e.g. 30s, 10m, 1h, 250ms)")
    return int(total)


def maybe_ms(value: Duration | None) -> int | None:
    """``to_ms`` for an optional setting: None stays None."""
    return None if value is None else to_ms(value)
