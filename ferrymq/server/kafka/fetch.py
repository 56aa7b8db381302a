"""Fetch: whole stored batches as read from the segment files (no record inside is looked at:
``ferrymq.protocols.kafka.partitions.gather``, which the simulator runs too), and long polling: a
fetch that cannot be answered yet is parked until ``min_bytes`` are there or ``max_wait_ms`` has
passed. Appends by any front end wake the fetches parked on their partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ferrymq import limits
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import partitions
from ferrymq.protocols.kafka.fetch import FetchRequest, decode_fetch, encode_fetch_response
from ferrymq.server.kafka.connection import KafkaConnection, Slot


class FetchWaiter:
    """A fetch parked until ``min_bytes`` are there or ``max_wait_ms`` has passed."""

    __slots__ = ("conn", "done", "keys", "req", "slot", "timer")

    def __init__(self, conn: KafkaConnection, slot: Slot, req: FetchRequest) -> None:
        self.conn, self.slot, self.req = conn, slot, req
        self.keys = [(name, p.partition) for name, parts in req.topics for p in parts]
        self.timer: asyncio.TimerHandle | None = None
        self.done = False


class FetchApi:
    """``topics``: where the logs are; ``request_turn_end``: a woken fetch answers at the turn's end."""

    def __init__(self, topics: TopicRegistry, loop: asyncio.AbstractEventLoop,
                 request_turn_end: Callable[[], None]) -> None:
        self.topics = topics
        self.loop = loop
        self.request_turn_end = request_turn_end
        self.waiters: dict[tuple[str, int], set[FetchWaiter]] = {}
        self.woken: set[FetchWaiter] = set()
        topics.listeners.append(self.appended)

    def fetch(self, conn: KafkaConnection, slot: Slot, ctx: tuple[object, object]) -> None:
        req = decode_fetch(ctx[1], slot.version)  # type: ignore[arg-type]
        w = FetchWaiter(conn, slot, req)
        if self.try_complete(w, force=req.max_wait_ms <= 0):
            return
        for key in w.keys:
            self.waiters.setdefault(key, set()).add(w)
        wait_s = min(req.max_wait_ms, limits.KAFKA_FETCH_MAX_WAIT_MS) / 1000
        w.timer = self.loop.call_later(wait_s, self._expire, w)

    def _expire(self, w: FetchWaiter) -> None:
        w.timer = None
        self.try_complete(w, force=True)
        self.request_turn_end()

    def try_complete(self, w: FetchWaiter, force: bool = False) -> bool:
        if w.done or w.conn.closed:
            self._unpark(w)
            return True
        topics, size, failed = partitions.gather(self.topics, w.req)
        if not (force or failed or size >= max(w.req.min_bytes, 1)):
            return False
        self._unpark(w)
        w.slot.reply(encode_fetch_response(w.slot.version, topics))
        return True

    def _unpark(self, w: FetchWaiter) -> None:
        w.done = True
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        for key in w.keys:
            s = self.waiters.get(key)
            if s is not None:
                s.discard(w)
                if not s:
                    del self.waiters[key]

    # --- wake-ups --------------------------------------------------------------------------------

    def appended(self, name: str, partition: int) -> None:
        """Records were appended (by Kafka or AMQP): the fetches parked there answer at the turn's end."""
        waiting = self.waiters.get((name, partition))
        if waiting:
            self.woken.update(waiting)
            self.request_turn_end()

    def complete_woken(self) -> None:
        if self.woken:
            woken, self.woken = self.woken, set()
            for w in woken:
                self.try_complete(w)

    def forget_topic(self, name: str, partitions: int) -> None:
        for p in range(partitions):
            self.waiters.pop((name, p), None)

    def forget(self, conn: KafkaConnection) -> None:
        for s in list(self.waiters.values()):
            for w in [w for w in s if w.conn is conn]:
                self._unpark(w)
