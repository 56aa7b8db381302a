"""What the SNS endpoint keeps beside the core: parsed topics (cached against the exchange argument
they are read from, so a change by any path is seen), parsed filter policies, the key notifications
are signed with, and the HTTP/S deliverer."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

from ferrymq import limits
from ferrymq.core.exchange import Exchange
from ferrymq.http.sns.http_delivery import HttpDeliverer
from ferrymq.protocols.sns import filter_policy
from ferrymq.protocols.sns.topics import ARGUMENT, Subscription, Topic, bridge_queue

if TYPE_CHECKING:
    from ferrymq.core.broker import Broker
    from ferrymq.core.vhost import VHost
    from ferrymq.http.sns.bridge import Bridge


class SnsState:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.key = broker.rng.getrandbits(256).to_bytes(32, "big")  # signs this run's notifications
        self._topics: dict[str, tuple[object, Topic]] = {}  # exchange -> (argument, topic)
        # subscription id -> (policy text, scope, parsed policy)
        self._policies: dict[str, tuple[str, str, filter_policy.Policy]] = {}
        self.http = HttpDeliverer()
        self.bridge: Bridge | None = None  # set by the endpoint's setup
        # (topic, deduplication id) -> (MessageId, monotonic ms): FIFO topics' 5-minute window
        self._dedup: OrderedDict[tuple[str, str], tuple[str, int]] = OrderedDict()
        self.base_url = ""  # scheme://host:port of the last SNS request (links in bridged deliveries)

    def topic(self, ex: Exchange) -> Topic | None:
        """The topic an exchange is, or None when it is not one (an AMQP exchange)."""
        text = ex.arguments.get(ARGUMENT)
        if text is None:
            return None
        cached = self._topics.get(ex.name)
        if cached is not None and cached[0] is text:
            return cached[1]
        topic = Topic.loads(text)
        self._topics[ex.name] = (text, topic)
        return topic

    def save(self, vhost: VHost, ex: Exchange, topic: Topic) -> None:
        """Store the topic in its exchange's arguments (SQLite, synced before this returns)."""
        text = topic.dumps()
        vhost.change_exchange_arguments(ex, dict(ex.arguments, **{ARGUMENT: text}))
        self._topics[ex.name] = (ex.arguments[ARGUMENT], topic)

    def duplicate(self, topic: str, dedup: str, message_id: str, now_ms: int) -> str | None:
        """The MessageId of an earlier publish with this deduplication id within the window (the
        publish is then accepted and not delivered again), or None after remembering this one."""
        window = self._dedup
        while window and next(iter(window.values()))[1] <= now_ms - limits.DEDUP_WINDOW_MS:
            window.popitem(last=False)
        seen = window.get((topic, dedup))
        if seen is not None:
            return seen[0]
        window[(topic, dedup)] = (message_id, now_ms)
        return None

    def bridges(self, name: str) -> frozenset[str]:
        """Queues bound to topic ``name`` that carry AMQP publishes to its subscribers: a publish
        through SNS is fanned out here already and skips them."""
        return frozenset({bridge_queue(name)})

    def attach(self, vhost: VHost, name: str) -> None:
        if self.bridge is not None:
            self.bridge.attach(vhost, name)

    def forget(self, vhost: VHost, name: str) -> None:
        """A topic is being deleted: its bridge queue goes first, then what is cached of it."""
        if self.bridge is not None:
            self.bridge.detach(vhost, name)
        self._topics.pop(name, None)

    def policy(self, sub: Subscription) -> filter_policy.Policy | None:
        text = sub.attributes.get("FilterPolicy")
        if not text:
            return None
        cached = self._policies.get(sub.id)
        if cached is None or cached[0] != text or cached[1] != sub.scope:
            cached = self._policies[sub.id] = (text, sub.scope, filter_policy.parse(text, sub.scope))
        return cached[2]

    async def close(self) -> None:
        await self.http.close()
