"""How RabbitMQ prints values in its error texts (rabbit_misc:val/1, Erlang's ~tp), so a 406 reads
exactly as a RabbitMQ 3.10.8 node's does (checked on a node)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from ferrymq.core.properties import Long


def amqp_type(value: Any) -> str:
    """The AMQP field type name RabbitMQ reports for a decoded value (ints by range, except a
    ``Long``: a client's ``l`` value, or a JSON integer of the management API, which RabbitMQ reads
    as a long)."""
    if value is None:
        return "void"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Long):
        return "long"
    if isinstance(value, int):
        return "signedint" if -(2**31) <= value < 2**31 else "long"
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (str, "longstr"), ((bytes, bytearray), "binary"), (float, "double"),
        (Decimal, "decimal"), (datetime, "timestamp"), (dict, "table"), (list, "array"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


_ERLANG_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def erlang_term(value: Any) -> str:
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


def bare(value: Any) -> str:
    """rabbit_misc:val/1 for a plain value: 'true', 'direct', 'a'."""
    if isinstance(value, bool):
        return "'true'" if value else "'false'"
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return f"'{value}'"


def typed(value: Any) -> str:
    """rabbit_misc:val/1 for a table entry: none, or the value 'a' of type 'longstr'."""
    if value is None:
        return "none"
    return f"the value {bare(value)} of type '{amqp_type(value)}'"
