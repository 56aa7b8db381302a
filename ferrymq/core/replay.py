"""Dead-letter replay and peek: a dead letter goes back to the queue it died in.

The original queue is the first (newest) entry of the message's ``x-death`` header, as RabbitMQ
writes it. A replayed message is published into that queue with its properties (persistence,
headers, x-death included) unchanged, and only then settled in the dead-letter queue: both steps
go through the queues' own paths (``publish`` logs it in the target, ``settle`` logs the SETTLE
in the DLQ), so a crash between them can duplicate a message but never lose it. Messages without
an x-death, or whose queue is gone or refuses them (reject-publish overflow), stay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ferrymq import limits
from ferrymq.core.message import Message
from ferrymq.core.queue import Entry, Queue
from ferrymq.core.vhost import VHost


def origin(msg: Message) -> tuple[str, str] | None:
    """(original queue, reason) from the first x-death entry, or None for a message never dead-lettered."""
    deaths = (msg.props.headers or {}).get("x-death")
    if not isinstance(deaths, list) or not deaths or not isinstance(deaths[0], dict):
        return None
    queue = deaths[0].get("queue")
    if isinstance(queue, bytes | bytearray):
        queue = bytes(queue).decode("utf-8", "replace")
    if not isinstance(queue, str):
        return None
    reason = deaths[0].get("reason")
    return queue, reason.decode() if isinstance(reason, bytes) else str(reason)


def peek(queue: Queue, count: int) -> list[dict[str, Any]]:
    """The first ``count`` ready messages, left where they are (only those in memory: a paged
    tail is not read for a peek)."""
    out: list[dict[str, Any]] = []
    for entry in queue.ready_entries():
        if len(out) >= min(count, limits.DLQ_PEEK_MAX):
            break
        out.append(describe(entry))
    return out


def describe(entry: Entry) -> dict[str, Any]:
    msg = entry.msg
    found = origin(msg)
    deaths = (msg.props.headers or {}).get("x-death") or [{}]
    body = msg.body[:limits.DLQ_PREVIEW_BYTES]
    return {
        "payload": body.decode("utf-8", "replace"),
        "payload_bytes": len(msg.body),
        "exchange": msg.exchange,
        "routing_key": msg.routing_key,
        "persistent": msg.persistent,
        "original_queue": found[0] if found else None,
        "reason": found[1] if found else None,
        "count": int(deaths[0].get("count", 0)) if isinstance(deaths[0], dict) else 0,
    }


@dataclass(slots=True)
class ReplayResult:
    replayed: int
    before: dict[str, Any]
    after: dict[str, Any]


Resolve = Callable[[Message], tuple[str, Message] | None]


def by_death(msg: Message) -> tuple[str, Message] | None:
    """A broker dead letter goes back unchanged to the queue its x-death names."""
    found = origin(msg)
    return None if found is None else (found[0], msg)


def replay(vhost: VHost, dlq: Queue, count: int | None, resolve: Resolve = by_death) -> ReplayResult:
    """Move up to ``count`` (all when None) dead letters back to their original queues. ``resolve``
    says where a dead letter goes and as what (another kind of dead letter, e.g. a job's, may
    need rewriting); None leaves it in place."""
    dlq_before = dlq.message_count
    targets: dict[str, Queue] = {}

    def pick(entry: Entry) -> tuple[Queue, Message] | None:
        found = resolve(entry.msg)
        target = vhost.queues.get(found[0]) if found else None
        if found is None or target is None or target is dlq or target.deleted:
            return None
        targets[target.name] = target
        return target, found[1]

    taken, held = _take(dlq, count, pick)
    before = {"dlq": dlq_before, "targets": _counts(targets)}  # targets: untouched so far
    replayed = _transfer(dlq, taken, held)
    after = {"dlq": dlq.message_count, "targets": _counts(targets)}
    return ReplayResult(replayed, before, after)


def move(source: Queue, target: Queue, count: int | None) -> int:
    """The dashboard's "move messages": ready messages of one queue into another, the same way."""
    taken, held = _take(source, count, lambda entry: (target, entry.msg))
    return _transfer(source, taken, held)


Taken = list[tuple[Entry, Queue, Message]]


def _take(source: Queue, count: int | None, pick: Any) -> tuple[Taken, list[Entry]]:
    """Take up to ``count`` ready messages out for delivery, each with the queue it goes to and
    the message it goes as (``pick``; None: it stays)."""
    budget = source.message_count if count is None else min(max(count, 0), source.message_count)
    taken: Taken = []
    held: list[Entry] = []
    for _ in range(min(budget, limits.DLQ_REPLAY_MAX)):
        entry = source.get()
        if entry is None:
            break
        source.unacked_count += 1  # out for delivery until settled or returned
        chosen = pick(entry)
        if chosen is None:
            held.append(entry)
        else:
            taken.append((entry, *chosen))
    return taken, held


def _transfer(source: Queue, taken: Taken, held: list[Entry]) -> int:
    """Publish each into its target, then settle it in the source; what stays goes back."""
    moved = 0
    for entry, target, msg in taken:
        if target.publish(Message("", target.name, msg.body, msg.props, msg.raw_props)):
            source.settle(entry, None)
            moved += 1
        else:
            held.append(entry)
    for entry in held:
        entry.deliveries -= 1  # an attempt is not a delivery: no redelivered flag for it
        source.requeue(entry, None)
        source.counters["requeued"] -= 1
    return moved


def _counts(targets: dict[str, Queue]) -> dict[str, int]:
    return {name: q.message_count for name, q in targets.items()}
