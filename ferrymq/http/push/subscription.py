"""One browser's subscription: a core channel it owns, consuming from its private queue.

The queue is server-named, exclusive to the subscription and auto-deleted with its consumer, and
declared with ``x-max-length`` / ``x-max-length-bytes`` and ``x-overflow: drop-head``: when the
browser reads too slowly, the broker drops the oldest messages instead of holding more, and the
queue's ``dropped`` counter says how many — the subscription tells the browser (a ``lagged`` frame)
and goes on from the newest. Deliveries are acked only once the socket has taken them, so consumer
credit (PREFETCH) bounds what waits here between the queue and the socket.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from ferrymq.core.channel import CANCEL, CLOSE, DELIVER, Channel
from ferrymq.core.message import Message
from ferrymq.core.queue import Queue
from ferrymq.http.plane import Plane
from ferrymq.http.push import bounds, frames
from ferrymq.http.push.params import Target

QUEUE_ARGUMENTS = {"x-max-length": bounds.QUEUE_MAX_MESSAGES,
                   "x-max-length-bytes": bounds.QUEUE_MAX_BYTES, "x-overflow": "drop-head"}


class Subscription:
    """Opened by ``open``; ``next_frames`` waits for what to send, ``sent`` settles it, ``close``
    removes channel and queue. ``drain_channel`` is the shell's end-of-turn call (ChannelOwner)."""

    def __init__(self, plane: Plane, target: Target, username: str) -> None:
        self.plane = plane
        self.target = target
        self.username = username
        self.pending: deque[tuple[int, Message]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # A transport that can write without waiting (the WebSocket) sets this: frames go out at the
        # turn's end, in the drain, with no task woken per browser. False back: the socket is full.
        self.write_now: Callable[[list[bytes]], bool] | None = None
        self.blocked = False  # the socket was full: the task waits for it, then writes
        self.ended: str | None = None  # why the broker ended it (queue deleted, channel closed)
        self.channel: Channel | None = None
        self.queue: Queue | None = None
        self._dropped_seen = 0

    def open(self) -> str:
        """Declare, bind and consume in one loop turn; the queue's name (the first frame says it)."""
        vhost, broker = self.target.vhost, self.plane.broker
        self.channel = channel = broker.open_channel(vhost, 1, self, self.username)
        queue = vhost.declare_queue("", connection=self, exclusive=True, auto_delete=True,
                                    arguments=dict(QUEUE_ARGUMENTS))
        self.queue = queue
        try:
            vhost.bind(queue.name, self.target.exchange.name, self.target.key, None,
                       to_exchange=False, connection=self)
            channel.qos(bounds.PREFETCH, False)
            channel.consume(queue.name, "push", arguments={})
        except Exception:
            self.close()
            raise
        self.plane.end_turn()
        return queue.name

    # --- ChannelOwner ------------------------------------------------------------------------

    def drain_channel(self, channel: Channel) -> None:
        """The turn's deliveries join ``pending`` (at most PREFETCH: they are unacked until sent)."""
        outbox, channel.outbox = channel.outbox, []
        for effect in outbox:
            kind = effect[0]
            if kind == DELIVER:
                self.pending.append((effect[2], effect[6]))
            elif kind in (CANCEL, CLOSE):
                self.ended = "the subscription's queue was deleted" if kind == CANCEL else str(effect[2])
        if self.write_now is not None and not self.blocked and self.ended is None:
            self._write_through(self.write_now)
        else:
            self.wake()

    def _write_through(self, write: Callable[[list[bytes]], bool]) -> None:
        """The fast path of a fan-out: write and ack in the drain. Acking may deliver more in this
        same drain (the shell drains again what the ack made dirty), until the socket is full."""
        out, last_tag = self.take()
        if not out:
            return
        try:
            room = write(out)
        except ConnectionError:  # the task sees the socket gone and cleans up
            self.write_now = None
            self.wake()
            return
        self.sent(last_tag)
        if not room:
            self.blocked = True
            self.wake()

    def wake(self) -> None:
        """Something to send, or to notice (the socket closed): the waiting ``next_frames`` returns."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- the socket's side -------------------------------------------------------------------

    async def next_frames(self, timeout_s: float) -> tuple[list[bytes], int]:
        """Frames to send now and the delivery tag that settles them ([] after ``timeout_s`` idle).
        A ``lagged`` frame comes first when the queue dropped messages since the last call."""
        if not self.pending and self.ended is None:
            await self._wait(timeout_s)
            if not self.pending and self.ended is None:
                return [], 0
        return self.take()

    def take(self) -> tuple[list[bytes], int]:
        """Every pending delivery as a frame (after a ``lagged`` one if the queue dropped some)."""
        out: list[bytes] = []
        skipped = self._skipped()
        if skipped:
            out.append(frames.lagged(skipped))
        last_tag = 0
        pending = self.pending
        while pending:
            last_tag, msg = pending.popleft()
            out.append(frames.message(msg))
        return out, last_tag

    async def _wait(self, timeout_s: float) -> None:
        """A bare future and one timer: asyncio.wait_for would add a task per wake-up, per browser."""
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_later(timeout_s, _release, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def _skipped(self) -> int:
        queue = self.queue
        if queue is None:
            return 0
        dropped = queue.counters["dropped"]
        skipped, self._dropped_seen = dropped - self._dropped_seen, dropped
        return skipped

    def sent(self, last_tag: int) -> None:
        """The socket took every frame up to ``last_tag``: ack them, so the queue delivers more."""
        channel = self.channel
        if last_tag and channel is not None and not channel.closed:
            channel.ack(last_tag, True)
            self.plane.end_turn()

    def close(self) -> None:
        """Cancel, unbind and delete the private queue (exclusive: it goes with its owner)."""
        channel, self.channel = self.channel, None
        if channel is None:
            return
        broker = self.plane.broker
        broker.close_channel(channel)
        broker.connection_closed(self)
        self.pending.clear()
        self.plane.end_turn()

    def describe(self) -> dict[str, Any]:
        target = self.target
        return {"queue": self.queue.name if self.queue else "", "exchange": target.exchange.name,
                "key": target.key, "vhost": target.vhost.name}


def _release(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
