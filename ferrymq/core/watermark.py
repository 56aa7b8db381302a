"""RabbitMQ's two forms of the memory high watermark, parsed: relative (a fraction of the machine's
memory, ``vm_memory_high_watermark``) or absolute (``vm_memory_high_watermark.absolute``, "1GiB").

Pure: the shell reads the machine's memory and the process's RSS (ferrymq.server.memory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ferrymq import limits

_UNITS = {"": 1, "k": 1000, "kb": 1000, "kib": 1024, "ki": 1024, "m": 1000**2, "mb": 1000**2,
          "mib": 1024**2, "mi": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "gi": 1024**3,
          "t": 1000**4, "tb": 1000**4, "tib": 1024**4, "ti": 1024**4}
_AMOUNT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


@dataclass(frozen=True, slots=True)
class Watermark:
    """Either ``relative`` (a fraction of total memory) or ``absolute`` (bytes); RabbitMQ's two forms."""

    relative: float | None = None
    absolute: int | None = None

    def limit_bytes(self, total_bytes: int) -> int:
        if self.absolute is not None:
            return self.absolute
        return int(total_bytes * (self.relative or 0.0))

    def as_json(self) -> dict[str, float | int]:
        if self.absolute is not None:
            return {"absolute": self.absolute}
        return {"relative": self.relative or 0.0}


def parse_amount(text: str | int) -> int:
    """RabbitMQ's memory amounts: 1073741824, "1GiB", "1GB", "512MiB", "1024KiB" (case-insensitive)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"memory amount must not be negative, got {text}")
        return text
    match = _AMOUNT.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"invalid memory amount {text!r} (expected bytes or e.g. '1GiB', '512MB')")
    return int(float(match.group(1)) * _UNITS[unit])


def parse_watermark(value: object) -> Watermark:
    """A number below 1 (or a float) is relative, as RabbitMQ's ``vm_memory_high_watermark``; a string
    with a unit, an integer above 1, or ``absolute:<amount>`` is absolute
    (``vm_memory_high_watermark.absolute``)."""
    if isinstance(value, Watermark):
        return value
    if isinstance(value, dict) and len(value) == 1:  # a TOML table: relative = 0.4 / absolute = "1GiB"
        (form, amount), = value.items()
        if form == "relative":
            return parse_watermark(float(amount))
        if form == "absolute":
            return Watermark(absolute=parse_amount(amount))
    if _is_fraction(value):
        fraction = float(value)  # type: ignore[arg-type]
        if not 0.0 <= fraction <= limits.MEMORY_WATERMARK_RELATIVE_MAX:
            raise ValueError(f"vm_memory_high_watermark: relative value {fraction} is outside "
                             f"0..{limits.MEMORY_WATERMARK_RELATIVE_MAX}")
        return Watermark(relative=fraction)
    if isinstance(value, str) and value.startswith("absolute:"):
        value = value[len("absolute:"):]
    if isinstance(value, int | str):
        return Watermark(absolute=parse_amount(value))
    raise ValueError(f"vm_memory_high_watermark: expected a fraction or an amount, got {value!r}")


def _is_fraction(value: object) -> bool:
    """0.4, "0.4", 1.0, 0 and "1" are fractions (0: the alarm always on, as RabbitMQ); 1073741824 and
    "1GiB" are amounts. Any float is a fraction (out of range: refused)."""
    if isinstance(value, float):
        return True
    if isinstance(value, bool) or not isinstance(value, int | str):
        return False
    try:
        return float(value) <= limits.MEMORY_WATERMARK_RELATIVE_MAX
    except ValueError:
        return False


