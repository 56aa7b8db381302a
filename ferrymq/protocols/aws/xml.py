"""The AWS query protocol's replies: XML in the service's namespace, with the result under
``<ActionResult>`` and the request id under ``<ResponseMetadata>``; errors in ``<ErrorResponse>``.

Results arrive in the JSON protocol's shape; ``Hints`` says how a list or map is written in XML,
which differs by service (SQS flattens lists, SNS wraps them in ``<member>``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

from ferrymq.protocols.aws.errors import AwsError


@dataclass(frozen=True)
class Hints:
    """``lists``: JSON key -> XML element of each item, written flat (repeated, no wrapper) unless
    the key is in ``wrapped`` (then ``<Key><member>..</member></Key>``). ``maps``: JSON key ->
    (entry element, key element, value element), flat likewise unless wrapped."""

    lists: dict[str, str] = field(default_factory=dict)
    maps: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    wrapped: frozenset[str] = frozenset()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return escape(str(value))


def element(name: str, value: Any, hints: Hints, out: list[str]) -> None:
    if value is None:
        return
    if name in hints.maps and isinstance(value, dict):
        entry, key_el, value_el = hints.maps[name]
        wrap = name in hints.wrapped
        if wrap:
            out.append(f"<{name}>")
        for k, v in value.items():
            out.append(f"<{entry}><{key_el}>{_text(k)}</{key_el}>")
            element(value_el, v, hints, out)
            out.append(f"</{entry}>")
        if wrap:
            out.append(f"</{name}>")
    elif isinstance(value, list):
        item = hints.lists.get(name, "member")
        wrap = name in hints.wrapped or name not in hints.lists
        if wrap:
            out.append(f"<{name}>")
        for v in value:
            element(item, v, hints, out)
        if wrap:
            out.append(f"</{name}>")
    elif isinstance(value, dict):
        out.append(f"<{name}>")
        for k, v in value.items():
            element(k, v, hints, out)
        out.append(f"</{name}>")
    else:
        out.append(f"<{name}>{_text(value)}</{name}>")


def response(action: str, result: dict[str, Any], namespace: str, request_id: str,
             hints: Hints) -> bytes:
    out = [f'<?xml version="1.0"?><{action}Response xmlns="{namespace}">']
    if result:
        element(f"{action}Result", result, hints, out)
    out.append(f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
               f"</{action}Response>")
    return "".join(out).encode()


def error_response(err: AwsError, namespace: str, request_id: str) -> bytes:
    kind = "Sender" if err.sender_fault else "Receiver"
    return (f'<?xml version="1.0"?><ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type>'
            f"<Code>{escape(err.query_code)}</Code><Message>{escape(err.message)}</Message>"
            f"<Detail/></Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
