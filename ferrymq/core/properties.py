"""The 14 AMQP basic properties as plain data, shared by every front end.

Decoding and encoding the wire form is the protocol layer's job; the core only reads the few
fields it needs (expiration, priority, headers, delivery mode, message id) and, when it must change
a message (dead-lettering), builds a new Properties and drops the raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


class Long(int):
    """An integer carried as a signed 64-bit field-table value (``l``), not the smallest type that
    holds it: RabbitMQ writes the counts it adds (x-death ``count``, ``x-delivery-count``) as longs,
    and typed clients read them so (Spring AMQP casts ``count`` to Long); a client's own ``l`` values
    decode to it, so they keep their type when the broker re-encodes headers (dead-lettering)."""

    __slots__ = ()


# Property flag bits, highest first, in wire order (AMQP 0-9-1 basic class).
FLAG_CONTENT_TYPE = 1 << 15
FLAG_CONTENT_ENCODING = 1 << 14
FLAG_HEADERS = 1 << 13
FLAG_DELIVERY_MODE = 1 << 12
FLAG_PRIORITY = 1 << 11
FLAG_CORRELATION_ID = 1 << 10
FLAG_REPLY_TO = 1 << 9
FLAG_EXPIRATION = 1 << 8
FLAG_MESSAGE_ID = 1 << 7
FLAG_TIMESTAMP = 1 << 6
FLAG_TYPE = 1 << 5
FLAG_USER_ID = 1 << 4
FLAG_APP_ID = 1 << 3
FLAG_CLUSTER_ID = 1 << 2

# (attribute, flag, wire kind) in wire order; kinds: s=shortstr, t=table, o=octet, T=timestamp.
PROPERTY_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("content_type", FLAG_CONTENT_TYPE, "s"),
    ("content_encoding", FLAG_CONTENT_ENCODING, "s"),
    ("headers", FLAG_HEADERS, "t"),
    ("delivery_mode", FLAG_DELIVERY_MODE, "o"),
    ("priority", FLAG_PRIORITY, "o"),
    ("correlation_id", FLAG_CORRELATION_ID, "s"),
    ("reply_to", FLAG_REPLY_TO, "s"),
    ("expiration", FLAG_EXPIRATION, "s"),
    ("message_id", FLAG_MESSAGE_ID, "s"),
    ("timestamp", FLAG_TIMESTAMP, "T"),
    ("type", FLAG_TYPE, "s"),
    ("user_id", FLAG_USER_ID, "s"),
    ("app_id", FLAG_APP_ID, "s"),
    ("cluster_id", FLAG_CLUSTER_ID, "s"),
)


@dataclass(slots=True)
class Properties:
    """Basic properties; None means absent on the wire."""

    content_type: str | None = None
    content_encoding: str | None = None
    headers: dict[str, Any] | None = field(default=None)
    delivery_mode: int | None = None
    priority: int | None = None
    correlation_id: str | None = None
    reply_to: str | None = None
    expiration: str | None = None
    message_id: str | None = None
    timestamp: int | None = None
    type: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    cluster_id: str | None = None

    def with_changes(self, **changes: Any) -> Properties:
        return replace(self, **changes)


EMPTY_PROPERTIES = Properties()
