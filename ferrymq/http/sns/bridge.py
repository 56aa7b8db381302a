"""AMQP publishes to a topic's exchange reach the topic's SNS subscribers.

Each topic has a durable bridge queue, ``sns-bridge.<topic>``, bound to its exchange and consumed
by the SNS endpoint on a core channel of its own (this object is the ChannelOwner). A message an
AMQP client publishes to the exchange lands there like in any bound queue; the bridge turns it into
an SNS message (body -> Message, headers not starting with ``x-`` -> message attributes,
``x-sns-subject`` -> Subject, message_id -> MessageId) and fans it out to the subscriptions as
Publish does, acking it only once that fan-out is stored (a crash before redelivers it: at least
once). Publishes made through SNS skip the bridge queue: they are fanned out already.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ferrymq.core.channel import DELIVER, Channel
from ferrymq.core.message import Message
from ferrymq.errors import ChannelError
from ferrymq.http.sns import fanout
from ferrymq.http.sns.publishing import Published
from ferrymq.protocols.sns.topics import ARGUMENT, BRIDGE_PREFIX, bridge_queue
from ferrymq.protocols.sqs import messages

if TYPE_CHECKING:
    from ferrymq.core.vhost import VHost
    from ferrymq.http.plane import Plane
    from ferrymq.http.sns.context import Context

log = logging.getLogger("ferrymq.http.sns")
PREFETCH = 256  # bridged messages in flight per topic
CHANNEL_NUMBER = 0  # the bridge channel of a vhost is not on any AMQP connection
NAME_MAX = 255  # an AMQP queue name's bound: a longer topic name gets no bridge


class Bridge:
    def __init__(self, plane: Plane, context_for: Callable[[VHost], Context]) -> None:
        self.plane = plane
        self.context_for = context_for
        self.channels: dict[str, Channel] = {}

    def attach_all(self) -> None:
        """Every topic of every vhost gets its bridge (start-up: topics were restored from disk)."""
        for vhost in list(self.plane.broker.vhosts.values()):
            for ex in list(vhost.exchanges.values()):
                if ARGUMENT in ex.arguments:
                    self.attach(vhost, ex.name)
        self.plane.end_turn()

    def attach(self, vhost: VHost, topic: str) -> None:
        """Declare, bind and consume the topic's bridge queue (idempotent)."""
        name = bridge_queue(topic)
        if len(name.encode()) > NAME_MAX:
            return
        vhost.declare_queue(name, connection=None, durable=True)
        vhost.bind(name, topic, "", None, to_exchange=False, connection=None)
        channel = self._channel(vhost)
        if name not in channel.consumers:
            channel.consume(name, name)

    def detach(self, vhost: VHost, topic: str) -> None:
        vhost.delete_queue(bridge_queue(topic), connection=None)

    def _channel(self, vhost: VHost) -> Channel:
        ch = self.channels.get(vhost.name)
        if ch is None or ch.closed:
            ch = self.plane.broker.open_channel(vhost, CHANNEL_NUMBER, self, "")
            ch.qos(PREFETCH, False)
            self.channels[vhost.name] = ch
        return ch

    # --- ChannelOwner ------------------------------------------------------------------------------

    def drain_channel(self, channel: Channel) -> None:
        """Deliveries from bridge queues: forwarded in a callback of their own, not inside the drain."""
        outbox, channel.outbox = channel.outbox, []
        taken = [(e[1], e[2], e[6]) for e in outbox if e[0] == DELIVER]
        if taken:
            asyncio.get_running_loop().call_soon(self._forward, channel, taken)

    def _forward(self, channel: Channel, taken: list[tuple[str, int, Message]]) -> None:
        ctx = self.context_for(channel.vhost)
        posts: list[fanout.Post] = []
        for consumer_tag, _, msg in taken:
            found = ctx.find(consumer_tag[len(BRIDGE_PREFIX):])
            if found is not None:
                ex, topic = found
                posts += fanout.deliver(ctx, ex, topic, published(ctx, msg), to_exchange=False)

        def stored(ok: bool) -> None:
            if not ok or channel.closed:
                return  # unacked: the bridge queue delivers them again
            for _, tag, _ in taken:
                try:
                    channel.ack(tag, False)
                except ChannelError:  # the queue went (topic deleted) while its fan-out was stored
                    log.debug("SNS bridge: delivery %d gone before its ack", tag)
            fanout.post(ctx, posts)
            self.plane.end_turn()
        self.plane.commit.hold(stored)
        self.plane.end_turn()


def published(ctx: Context, msg: Message) -> Published:
    """An AMQP message as the SNS message its subscribers get."""
    subject = messages.header_text(msg, fanout.SUBJECT)
    return Published(msg.props.message_id or ctx.new_id(), messages.body_text(msg), subject,
                     messages.attributes_of(msg), group=messages.header_text(msg, messages.GROUP))
