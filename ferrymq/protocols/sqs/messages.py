"""SQS messages <-> core messages: one store, so AMQP consumers read what SQS sent and back.

SQS -> AMQP: the body as UTF-8 bytes; MessageId -> ``message_id``; persistent; the sent time ->
``timestamp`` (s); each message attribute -> a header of the same name
(String and Number as text, Binary as bytes; a type other than plain String/Binary is kept in the
``x-sqs-types`` table); MessageGroupId -> ``x-group-id``, MessageDeduplicationId ->
``x-deduplication-id`` (the core's FIFO headers); AWSTraceHeader -> ``x-sqs-trace``; a FIFO
SequenceNumber -> ``x-sqs-sequence``; a delayed message's send time -> ``x-sqs-sent-ms`` (others'
is when the queue took them in).
AMQP -> SQS: headers not starting with ``x-`` become message attributes (text: String, bytes:
Binary, numbers: Number); a body that is not UTF-8 is shown with U+FFFD replacements.
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.message import Message
from ferrymq.core.properties import Long, Properties
from ferrymq.protocols.aws.attributes import Attribute

TYPES = "x-sqs-types"
SENT = "x-sqs-sent-ms"
TRACE = "x-sqs-trace"
SEQUENCE = "x-sqs-sequence"
SENDER = "x-sqs-sender"
GROUP = "x-group-id"
DEDUP = "x-deduplication-id"
DEAD_SOURCE = "x-first-death-queue"  # set by the core's dead-lettering


def to_core(queue: str, body: str, attributes: dict[str, Attribute], *, message_id: str, sent_ms: int,
            sender: str, group: str | None = None, dedup: str | None = None,
            sequence: str | None = None, trace: str | None = None, delayed: bool = False) -> Message:
    headers: dict[str, Any] = {name: a.value for name, a in attributes.items()}
    types = {name: a.data_type for name, a in attributes.items()
             if a.data_type not in ("String", "Binary")}
    if types:
        headers[TYPES] = types
    if delayed:  # else the queue's enqueue stamp is the send time (a header costs every message)
        headers[SENT] = Long(sent_ms)
    if sender:  # the account's own sends (no access keys) name no one: SenderId is the account
        headers[SENDER] = sender
    for key, value in ((GROUP, group), (DEDUP, dedup), (SEQUENCE, sequence), (TRACE, trace)):
        if value is not None:
            headers[key] = value
    props = Properties(headers=headers or None, delivery_mode=2, message_id=message_id,
                       timestamp=sent_ms // 1000)
    return Message("", queue, body.encode(), props, None)


def attributes_of(msg: Message) -> dict[str, Attribute]:
    """A core message's SQS message attributes (its headers that are not the broker's own)."""
    headers = msg.props.headers or {}
    types = headers.get(TYPES)
    types = types if isinstance(types, dict) else {}
    out = {}
    for name, value in headers.items():
        if name.startswith("x-"):
            continue
        kind = types.get(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if isinstance(value, bool):
            out[name] = Attribute(kind or "String", "true" if value else "false")
        elif isinstance(value, bytes):
            out[name] = Attribute(kind or "Binary", value)
        elif isinstance(value, str):
            out[name] = Attribute(kind or "String", value)
        elif isinstance(value, int | float):
            out[name] = Attribute(kind or "Number", str(value))
    return out


def header_text(msg: Message, key: str) -> str | None:
    value = (msg.props.headers or {}).get(key)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None if value is None else str(value)


def sent_ms(msg: Message, enqueued_wall_ms: int | None, now_ms: int) -> int:
    """When it was sent: a delayed message says so in a header; else when its queue took it in
    (exact to the ms while the broker runs), else its AMQP timestamp (s), else now."""
    value = (msg.props.headers or {}).get(SENT)
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if enqueued_wall_ms is not None:
        return enqueued_wall_ms
    if msg.props.timestamp:
        return int(msg.props.timestamp) * 1000
    return now_ms


def body_text(msg: Message) -> str:
    return msg.body.decode("utf-8", "replace")


def selected(attributes: dict[str, Attribute], names: list[str]) -> dict[str, Attribute]:
    """The attributes a receive asked for: ``All`` / ``.*``, exact names, or ``prefix.*``."""
    if not names or not attributes:
        return {}
    if "All" in names or ".*" in names:
        return attributes
    prefixes = tuple(n[:-1] for n in names if n.endswith(".*"))
    return {k: v for k, v in attributes.items() if k in names or (prefixes and k.startswith(prefixes))}
