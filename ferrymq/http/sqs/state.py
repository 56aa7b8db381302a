"""What the SQS endpoint keeps beside the core: one channel per vhost that holds every in-flight
receive (its unacked deliveries, leased for their visibility timeouts), the long polls waiting on
it, and AWS's per-queue clocks (purges, recent deletes, first receives).

The channel's owner is this object (ferrymq.core.channel.ChannelOwner): a long poll is a core
consumer with credit for the messages it may still take; what the queue hands it arrives as
DELIVER effects at the end of the loop turn and wakes the poll.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferrymq import limits
from ferrymq.core.channel import DELIVER, Channel
from ferrymq.core.queue import Entry, Queue

if TYPE_CHECKING:
    from ferrymq.core.broker import Broker
    from ferrymq.core.vhost import VHost

CHANNEL_NUMBER = 0  # the SQS channel of a vhost is not on any AMQP connection


@dataclass(slots=True)
class Taken:
    """One message handed to a receive: its delivery tag on the SQS channel and what it holds."""

    tag: int
    queue: Queue
    entry: Entry


@dataclass(slots=True)
class Poll:
    """A long poll: the consumer it registered and what has been delivered to it so far."""

    consumer_tag: str
    queue: Queue
    taken: list[Taken] = field(default_factory=list)
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class SqsState:
    def __init__(self, broker: Broker, boot: str) -> None:
        self.broker = broker
        self.boot = boot  # receipt handles of an earlier run are stale, never mistaken for new ones
        self.channels: dict[str, Channel] = {}
        self.polls: dict[str, Poll] = {}
        self.first_receive: OrderedDict[int, int] = OrderedDict()  # id(entry) -> wall ms
        self.purged: dict[tuple[str, str], int] = {}  # (vhost, queue) -> monotonic ms
        self.deleted: dict[tuple[str, str], int] = {}
        self.sequence = 0
        # FIFO sends deduplicated within the window answer the first send's MessageId and
        # SequenceNumber, as SQS does: (vhost, queue, dedup key) -> (expiry mono ms, reply)
        self.sent: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}
        self.sent_order: deque[tuple[int, tuple[str, str, str]]] = deque()
        self.moves: dict[str, Any] = {}  # task handle -> ferrymq.http.sqs.moves.MoveTask

    def channel(self, vhost: VHost) -> Channel:
        ch = self.channels.get(vhost.name)
        if ch is None or ch.closed:
            ch = self.broker.open_channel(vhost, CHANNEL_NUMBER, self, "")
            self.channels[vhost.name] = ch
        return ch

    # --- ChannelOwner ------------------------------------------------------------------------------

    def drain_channel(self, channel: Channel) -> None:
        """Deliveries to long polls wake them; nothing else this channel emits matters here."""
        outbox, channel.outbox = channel.outbox, []
        for effect in outbox:
            if effect[0] == DELIVER:
                self._delivered(channel, effect[1], effect[2])

    def _delivered(self, channel: Channel, consumer_tag: str, tag: int) -> None:
        held = channel.unacked.get(tag)
        poll = self.polls.get(consumer_tag)
        if held is None:
            return
        if poll is None:  # the poll ended before the turn did: the message is visible again
            channel.set_lease(tag, 0)
            return
        poll.taken.append(Taken(tag, held[0], held[1]))
        poll.woken.set()

    def take_pending(self, channel: Channel, poll: Poll) -> None:
        """Deliveries to ``poll`` still in the outbox (this turn's): taken now, before it ends."""
        keep = []
        for effect in channel.outbox:
            if effect[0] == DELIVER and effect[1] == poll.consumer_tag:
                held = channel.unacked.get(effect[2])
                if held is not None:
                    poll.taken.append(Taken(effect[2], held[0], held[1]))
            else:
                keep.append(effect)
        channel.outbox[:] = keep

    # --- per-message and per-queue clocks ------------------------------------------------------------

    def first_received(self, entry: Entry, now_ms: int) -> int:
        stamps = self.first_receive
        key = id(entry)
        first = stamps.get(key)
        if first is None or entry.deliveries <= 1:
            first = stamps[key] = now_ms
            while len(stamps) > limits.SQS_FIRST_RECEIVE_MEMORY:
                stamps.popitem(last=False)
        return first

    def forget(self, entry: Entry) -> None:
        self.first_receive.pop(id(entry), None)

    def first_send(self, key: tuple[str, str, str], now_ms: int) -> dict[str, Any] | None:
        """The reply to an earlier send with this deduplication key, if it is still in the window."""
        order, sent = self.sent_order, self.sent
        while order and order[0][0] <= now_ms:
            _, old = order.popleft()
            if old in sent and sent[old][0] <= now_ms:
                del sent[old]
        found = sent.get(key)
        return found[1] if found is not None else None

    def remember_send(self, key: tuple[str, str, str], reply: dict[str, Any], now_ms: int) -> None:
        expiry = now_ms + limits.DEDUP_WINDOW_MS
        self.sent[key] = (expiry, reply)
        self.sent_order.append((expiry, key))

    def next_sequence(self, now_ms: int) -> str:
        """FIFO SequenceNumber: 20+ digits, rising within the run and across runs (wall-clock led)."""
        self.sequence = max(self.sequence + 1, now_ms * 1_000_000)
        return f"{self.sequence:020d}"
