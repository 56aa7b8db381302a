"""The x-death bookkeeping RabbitMQ 3.10 writes when it dead-letters a message.

Each death is a table {count (a long), reason, queue, time, exchange, routing-keys[, original-expiration]};
the newest is first, and a repeat of the same (queue, reason) increments that entry's count and
moves it to the front. ``x-first-death-*`` are written once. The per-message expiration is
removed, so the message does not expire again in the dead-letter queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ferrymq.core.message import Message
from ferrymq.core.properties import Long


def dead_letter_message(
    msg: Message, queue: str, reason: str, now_ms: int, exchange: str, routing_key: str
) -> Message:
    props = msg.props
    headers: dict[str, Any] = dict(props.headers or {})
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    count = 1
    for i, death in enumerate(deaths):
        if death.get("queue") == queue and death.get("reason") == reason:
            count = int(death.get("count", 0)) + 1
            del deaths[i]
            break
    entry: dict[str, Any] = {
        "count": Long(count),
        "reason": reason,
        "queue": queue,
        "time": datetime.fromtimestamp(now_ms // 1000, tz=UTC),
        "exchange": msg.exchange,
        "routing-keys": [msg.routing_key],
    }
    if props.expiration is not None:
        entry["original-expiration"] = props.expiration
    headers["x-death"] = [entry, *deaths]
    headers.setdefault("x-first-death-reason", reason)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-exchange", msg.exchange)
    new_props = props.with_changes(headers=headers, expiration=None)
    return msg.with_props(new_props, exchange, routing_key)
