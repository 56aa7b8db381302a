"""The FIFO queue kind: message groups and a deduplication window (FerryMQ extensions).

Groups: messages carrying the same ``x-group-id`` header are delivered one at a time, in
publish order; the next one of a group waits until the previous is settled. Different groups
(and messages without a group) flow in parallel. This is SQS FIFO's MessageGroupId, and what the
SQS front end will build on.

Deduplication: a message whose ``x-deduplication-id`` header (or, failing that, message_id) was
seen within ``x-deduplication-window`` ms is accepted — the publisher gets its confirm — but not
enqueued again, as SQS does within its 5-minute window.

Finding the next deliverable message scans past locked groups, so this kind trades the plain
queue's O(1) head for fairness across groups; it is chosen only when asked for.
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import Any

from ferrymq.core.consumer import Consumer
from ferrymq.core.message import Message
from ferrymq.core.queue import Entry, Queue

GROUP_HEADER = "x-group-id"
DEDUP_HEADER = "x-deduplication-id"


def group_of(msg: Message) -> Any:
    headers = msg.props.headers
    return headers.get(GROUP_HEADER) if headers else None


class FifoQueue(Queue):
    __slots__ = ("_inflight", "_seen", "_seen_order", "batch_groups")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plain = False
        self._inflight: dict[Any, int] = {}
        # While a batch is taken (an SQS receive of up to 10), the groups it has taken from stay
        # open to it: one receive may return several messages of a group, in order, as SQS does.
        self.batch_groups: set[Any] | None = None
        self._seen: dict[str, int] = {}
        self._seen_order: deque[tuple[int, str]] = deque()

    # --- deduplication -----------------------------------------------------------------------

    def publish(self, msg: Message) -> bool:
        window = self.args.dedup_window_ms
        if window is not None:
            key = _dedup_key(msg)
            if key is not None:
                now = self.clock.monotonic_ms()
                self._forget_before(now)
                if key in self._seen:
                    self.counters["deduplicated"] += 1
                    return True
                self._seen[key] = now + window
                self._seen_order.append((now + window, key))
        return super().publish(msg)

    def _forget_before(self, now_ms: int) -> None:
        order, seen = self._seen_order, self._seen
        while order and order[0][0] <= now_ms:
            _, key = order.popleft()
            if seen.get(key, now_ms + 1) <= now_ms:
                del seen[key]

    # --- groups --------------------------------------------------------------------------------

    def _take_next(self) -> Entry | None:
        if not self.args.message_groups:
            return self._pop()
        for level in reversed(self._levels):
            entry = self._first_free(level.returned, heap=True) or self._first_free(level.fresh)
            if entry is not None:
                self.ready_count -= 1
                self.ready_bytes -= len(entry.msg.body)
                if not entry.expires_at or entry.expires_at > self.clock.monotonic_ms():
                    self._lock(entry)  # an expired entry is dropped by the caller, never held
                return entry
        return None

    def _first_free(self, entries: Any, heap: bool = False) -> Entry | None:
        ordered = sorted(entries) if heap else entries
        for i, entry in enumerate(ordered):
            group = group_of(entry.msg)
            if group is None or not self._inflight.get(group) or (
                    self.batch_groups is not None and group in self.batch_groups):
                if heap:
                    entries.remove(entry)
                    heapq.heapify(entries)
                else:
                    del entries[i]
                return entry
        return None

    def _lock(self, entry: Entry) -> None:
        group = group_of(entry.msg)
        if group is not None:
            self._inflight[group] = self._inflight.get(group, 0) + 1
            if self.batch_groups is not None:
                self.batch_groups.add(group)

    def _release(self, entry: Entry) -> None:
        group = group_of(entry.msg)
        if group is not None and self._inflight.get(group):
            self._inflight[group] -= 1
            if not self._inflight[group]:
                del self._inflight[group]

    def _deliver(self, consumer: Consumer, entry: Entry) -> None:
        super()._deliver(consumer, entry)
        if consumer.no_ack:
            self._release(entry)

    def settle(self, entry: Entry, consumer: Consumer | None) -> None:
        super().settle(entry, consumer)
        self._release(entry)

    def requeue(self, entry: Entry, consumer: Consumer | None) -> None:
        super().requeue(entry, consumer)
        self._release(entry)

    def discard(self, entry: Entry, consumer: Consumer | None) -> None:
        super().discard(entry, consumer)
        self._release(entry)


def _dedup_key(msg: Message) -> str | None:
    headers = msg.props.headers
    key = headers.get(DEDUP_HEADER) if headers else None
    if key is None:
        key = msg.props.message_id
    return None if key is None else str(key)
