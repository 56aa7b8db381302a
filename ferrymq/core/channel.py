"""A channel as the core sees it: delivery tags, unacked deliveries, credit, confirms, tx.

Commands come in as method calls; effects go out as tuples appended to ``outbox`` (kinds below),
which the front end drains once per loop turn. The core never encodes a frame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ferrymq.core.args import consumer_priority
from ferrymq.core.consumer import Consumer
from ferrymq.core.lease import LEASE_EXCHANGE, Leases, lease_request
from ferrymq.core.message import Message
from ferrymq.core.properties import Long
from ferrymq.core.trace import HEADER_BYTES as TRACE_HEADER
from ferrymq.errors import AccessRefused, NotAllowed, PreconditionFailed

if TYPE_CHECKING:
    from ferrymq.core.clock import Clock
    from ferrymq.core.permissions import Permissions
    from ferrymq.core.queue import Entry, Queue
    from ferrymq.core.trace import Tracer
    from ferrymq.core.vhost import VHost

# Outbox effect kinds. Shapes:
# (DELIVER, consumer_tag, delivery_tag, redelivered, exchange, routing_key, message)
# (CONFIRM, publish_seq, ack)
# (RETURN, reply_code, reply_text, exchange, routing_key, message)
# (CANCEL, consumer_tag)                       server-sent basic.cancel
# (CLOSE, reply_code, reply_text)              the core wants this channel closed
DELIVER, CONFIRM, RETURN, CANCEL, CLOSE = range(5)
REPLY_TO = "amq.rabbitmq.reply-to"

# unacked value: (queue, entry, consumer or None for basic.get, delivered_at monotonic ms)
Delivery = tuple["Queue", "Entry", "Consumer | None", int]


class Services(Protocol):
    """What a channel needs of the broker: the clock, the turn's list of channels with effects,
    tokens for generated names, the direct reply-to registry and the default consumer timeout.
    Declared here so the channel never imports the broker (the broker passes itself in)."""

    clock: Clock
    dirty: list[Channel]
    reply_channels: dict[str, Channel]
    consumer_timeout_ms: int
    counters: dict[str, int]  # publishes of closed channels, unroutable (rabbitmq_global_messages_*)
    leased: set[Channel]  # channels with leases (ferrymq.core.lease): the broker ticks them
    tracer: Tracer
    access: Permissions  # users' permissions (ferrymq.core.permissions)

    def unique_token(self) -> str: ...


@runtime_checkable
class ChannelOwner(Protocol):
    """A front end other than AMQP that owns core channels (the SQS endpoint, browser push): at the
    end of every loop turn the shell hands it each of its channels that has effects to take."""

    def drain_channel(self, channel: Channel) -> None: ...


class Channel:
    def __init__(
        self, vhost: VHost, number: int, connection: Any, username: str = "", *, broker: Services
    ) -> None:
        self.vhost = vhost
        self.broker = broker
        self.number = number
        self.connection = connection
        self.username = username
        self.publisher: str | None = username  # who a user_id must name (None: anyone, an impersonator)
        self.unacked: dict[int, Delivery] = {}
        self._low_tag = 1
        self.next_tag = 1
        self.unacked_count = 0
        self.prefetch_global = 0
        self.prefetch_consumer = 0
        self.consumers: dict[str, Consumer] = {}
        self.deliverable = True  # False under channel.flow(active=false) or output backpressure
        self.confirm_mode = False
        self.publish_seq = 0
        self.tx_mode = False
        self._tx_ops: list[tuple[Any, ...]] = []
        self.outbox: list[tuple[Any, ...]] = []
        self.dirty = False
        self.closed = False
        self.reply_to_tag: str | None = None
        self.reply_to_token: str | None = None
        self.received = 0  # publishes (added to the broker's counters when the channel closes)
        self.tracer = broker.tracer
        self.leases: Leases | None = None  # created by the first leased delivery (ferrymq.core.lease)
        self.enforce = False  # check the user's permissions (set for client channels)
        # Decisions found allowed, as RabbitMQ's channel caches them: exchange names a publish may
        # go to without a topic check, and (kind, type, name) triples; the broker empties it when
        # any permission changes.
        self.allowed: set[Any] = set()

    # --- effects -------------------------------------------------------------------------

    def emit(self, effect: tuple[Any, ...]) -> None:
        self.outbox.append(effect)
        if not self.dirty:
            self.dirty = True
            self.broker.dirty.append(self)

    def has_credit(self) -> bool:
        return self.deliverable and (
            not self.prefetch_global or self.unacked_count < self.prefetch_global
        )

    # --- delivery (called by queues) -----------------------------------------------------

    def deliver(self, consumer: Consumer, queue: Queue, entry: Entry) -> None:
        tag = self.next_tag
        self.next_tag = tag + 1
        if not consumer.no_ack:
            now = self.broker.clock.monotonic_ms()
            self.unacked[tag] = (queue, entry, consumer, now)
            self.unacked_count += 1
            if queue.lease_ms:
                (self.leases or self._leases()).hold(tag, now + queue.lease_ms)
        msg = entry.msg
        if msg.trace is not None:
            self._trace_delivery(consumer.tag, tag, queue, entry)
        if entry.deliveries > 1 and queue.args.counts_deliveries:
            msg = _with_delivery_count(msg, entry.deliveries - 1)
        self.outbox.append((DELIVER, consumer.tag, tag, entry.deliveries > 1, msg.exchange,
                            msg.routing_key, msg))
        if not self.dirty:
            self.dirty = True
            self.broker.dirty.append(self)

    # --- publish -------------------------------------------------------------------------

    def publish(self, exchange: str, routing_key: str, mandatory: bool, msg: Message) -> None:
        if self.enforce and exchange not in self.allowed:
            self._authorise_publish(exchange, routing_key)
        if self.tx_mode:
            self.vhost.check_publish(exchange, msg, self.publisher)
            self._tx_ops.append(("publish", exchange, routing_key, mandatory, msg))
            return
        if exchange == LEASE_EXCHANGE:
            self._lease_publish(routing_key, msg)
            return
        if msg.props.reply_to == REPLY_TO:
            msg = self._rewrite_reply_to(msg)
        seq = 0
        if self.confirm_mode:
            self.publish_seq += 1
            seq = self.publish_seq
        raw = msg.raw_props
        # Traced? One int test, unless the message has headers (0x20: trace.HEADERS_FLAG, inlined)
        if self.tracer.sample_every or raw is None or (raw[0] & 0x20 and TRACE_HEADER in raw):
            self._trace_publish(exchange, routing_key, msg)
        routed, accepted = self.vhost.publish(exchange, routing_key, msg, self.publisher)
        self.received += 1
        if not routed:
            self._unroutable(exchange, routing_key, mandatory, msg)
        if seq:
            self.emit((CONFIRM, seq, accepted))

    # --- permissions -----------------------------------------------------------------------

    def require(self, kind: str, resource_type: str, name: str) -> None:
        """403 ACCESS_REFUSED unless the user holds ``kind`` permission on the resource."""
        if not self.enforce or (kind, resource_type, name) in self.allowed:
            return
        refused = self.broker.access.check(self.username, self.vhost.name, kind, resource_type, name)
        if refused is not None:
            raise AccessRefused(refused)
        self._remember((kind, resource_type, name))

    def require_topic(self, kind: str, exchange: str, routing_key: str) -> None:
        """Topic permissions: checked only for an existing topic exchange, as RabbitMQ does."""
        ex = self.vhost.exchanges.get(exchange)
        if not self.enforce or ex is None or ex.type != "topic":
            return
        key = ("topic", kind, exchange, routing_key)
        if key in self.allowed:
            return
        refused = self.broker.access.check_topic(self.username, self.vhost.name, kind, exchange,
                                                 routing_key)
        if refused is not None:
            raise AccessRefused(refused)
        self._remember(key)

    def _authorise_publish(self, exchange: str, routing_key: str) -> None:
        self.require("write", "exchange", exchange)
        ex = self.vhost.exchanges.get(exchange)
        if ex is not None and ex.type == "topic" and self.broker.access.has_topic_rules(
                self.username, self.vhost.name, exchange):
            self.require_topic("write", exchange, routing_key)  # per routing key: not cached by name
        elif ex is not None or not exchange:
            self._remember(exchange)

    def _remember(self, key: Any) -> None:
        if len(self.allowed) >= 256:  # bounded, as RabbitMQ bounds its cache
            self.allowed.clear()
        self.allowed.add(key)

    def _lease_publish(self, routing_key: str, msg: Message) -> None:
        """A lease extension or release (ferrymq.core.lease): acted on here, confirmed, never routed.
        An unknown tag is ignored: its delivery may have been settled or taken back meanwhile."""
        tag, ms = lease_request(routing_key, msg.props.headers)
        self.received += 1
        self.set_lease(tag, ms)
        if self.confirm_mode:
            self.publish_seq += 1
            self.emit((CONFIRM, self.publish_seq, True))

    def set_lease(self, tag: int | None, lease_ms: int) -> int:
        """The lease of one unacked delivery (``tag``) or of all of them (None) now ends ``lease_ms``
        from now; 0 takes them back at once. Other tags are ignored. How many deliveries it touched.
        Front ends map their words onto this (amq.ferrymq.lease; an SQS ChangeMessageVisibility)."""
        unacked = self.unacked
        tags = list(unacked) if tag is None else [tag] if tag in unacked else []
        if tags and lease_ms:
            self._lease(tags, lease_ms)
        elif tags:
            self.broker.counters["leases_released"] += self._take_back(tags, "lease_released")
        return len(tags)

    def _unroutable(self, exchange: str, routing_key: str, mandatory: bool, msg: Message) -> None:
        if mandatory:
            self.broker.counters["unroutable_returned"] += 1
            self.emit((RETURN, 312, "NO_ROUTE", exchange, routing_key, msg))
        else:
            self.broker.counters["unroutable_dropped"] += 1

    def _trace_publish(self, exchange: str, routing_key: str, msg: Message) -> None:
        """Sampled or marked: open its trace, and say where the same routing code sends it."""
        tracer = self.broker.tracer
        if not tracer.wants(msg):
            return
        tid = tracer.start(self.vhost.name, exchange, routing_key, msg)
        try:
            ex = self.vhost.check_publish(exchange, msg, self.publisher)
        except Exception:  # the publish itself raises the same error right after
            return
        names = self.vhost.route(ex, routing_key, msg.props.headers)
        if not names:
            tracer.record(tid, "routed", None, "unroutable")
        for name in names:
            queue = self.vhost.queues.get(name)
            kind = type(queue).__name__ if queue is not None else "?"
            tracer.record(tid, "routed", name, f"to {kind}")
            if queue is not None and queue.store is not None and msg.persistent:
                tracer.awaiting_store.append((tid, name))

    def _trace_delivery(self, consumer_tag: str, tag: int, queue: Queue, entry: Entry) -> None:
        assert entry.msg.trace is not None
        self.broker.tracer.record(
            entry.msg.trace, "delivered", queue.name,
            f"consumer_tag={consumer_tag} channel={self.number} delivery_tag={tag} "
            f"delivery_count={entry.deliveries}")

    def _trace_settle(self, event: str, queue: Queue, entry: Entry, detail: str = "") -> None:
        assert entry.msg.trace is not None
        self.broker.tracer.record(entry.msg.trace, event, queue.name, detail)

    def confirm_select(self) -> None:
        self.confirm_mode = True

    # --- consume -------------------------------------------------------------------------

    def consume(
        self,
        queue_name: str,
        tag: str = "",
        *,
        no_ack: bool = False,
        exclusive: bool = False,
        arguments: dict[str, Any] | None = None,
    ) -> str:
        self.require("read", "queue", queue_name)
        queue = self.vhost.get_queue(queue_name, self.connection)
        if not tag:
            tag = f"amq.ctag-{self.broker.unique_token()}"
        if tag in self.consumers:
            raise NotAllowed(f"attempt to reuse consumer tag '{tag}'")
        args = arguments or {}
        timeout = args.get("x-consumer-timeout")
        consumer = Consumer(
            tag, queue, self, no_ack=no_ack, exclusive=exclusive,
            priority=consumer_priority(args), prefetch=self.prefetch_consumer,
            timeout_ms=timeout if isinstance(timeout, int) and timeout > 0 else None, args=args,
        )
        queue.add_consumer(consumer)
        self.consumers[tag] = consumer
        return tag

    def cancel(self, tag: str) -> bool:
        if tag is not None and tag == self.reply_to_tag:
            self.broker.reply_channels.pop(self.reply_to_token or "", None)
            self.reply_to_tag = self.reply_to_token = None
            return True
        consumer = self.consumers.pop(tag, None)
        if consumer is None:
            return False
        consumer.queue.remove_consumer(consumer)
        self.vhost.maybe_auto_delete(consumer.queue)
        return True

    # --- direct reply-to (amq.rabbitmq.reply-to) -------------------------------------------

    def consume_reply_to(self, tag: str, no_ack: bool) -> str:
        if not no_ack:
            raise PreconditionFailed("reply consumer cannot acknowledge")
        if self.reply_to_tag is not None:
            raise PreconditionFailed("reply consumer already set")
        self.reply_to_tag = tag or f"amq.ctag-{self.broker.unique_token()}"
        self.reply_to_token = self.broker.unique_token()
        self.broker.reply_channels[self.reply_to_token] = self
        return self.reply_to_tag

    def _rewrite_reply_to(self, msg: Message) -> Message:
        if self.reply_to_token is None:
            raise PreconditionFailed("fast reply consumer does not exist")
        props = msg.props.with_changes(reply_to=f"{REPLY_TO}.{self.reply_to_token}")
        return msg.with_props(props, msg.exchange, msg.routing_key)

    def deliver_reply(self, routing_key: str, msg: Message) -> None:
        """A reply published to amq.rabbitmq.reply-to.<token>: straight to the waiting consumer."""
        tag = self.next_tag
        self.next_tag = tag + 1
        self.emit((DELIVER, self.reply_to_tag, tag, False, msg.exchange, routing_key, msg))

    def cancel_by_server(self, consumer: Consumer) -> None:
        """The queue went away: drop the consumer and tell the client (consumer_cancel_notify)."""
        if self.consumers.pop(consumer.tag, None) is not None:
            self.emit((CANCEL, consumer.tag))

    def qos(self, prefetch_count: int, global_: bool) -> None:
        if global_:
            self.prefetch_global = prefetch_count
        else:
            self.prefetch_consumer = prefetch_count
        self._redispatch()

    # --- get -----------------------------------------------------------------------------

    def get(self, queue_name: str, no_ack: bool,
            lease_ms: int | None = None) -> tuple[int, bool, Message, int] | None:
        """basic.get: (delivery_tag, redelivered, message, remaining count) or None if empty.
        ``lease_ms`` overrides the queue's delivery lease for this one (an SQS receive's visibility
        timeout); 0 leaves it unleased."""
        self.require("read", "queue", queue_name)
        queue = self.vhost.get_queue(queue_name, self.connection)
        entry = queue.get()
        if entry is None:
            return None
        tag = self.next_tag
        self.next_tag = tag + 1
        queue.unacked_count += 1
        if entry.msg.trace is not None:
            self._trace_delivery("(basic.get)", tag, queue, entry)
        if no_ack:
            queue.settle(entry, None)
        else:
            now = self.broker.clock.monotonic_ms()
            self.unacked[tag] = (queue, entry, None, now)
            self.unacked_count += 1
            lease = queue.lease_ms if lease_ms is None else lease_ms
            if lease:
                (self.leases or self._leases()).hold(tag, now + lease)
        msg = entry.msg
        if entry.deliveries > 1 and queue.args.counts_deliveries:
            msg = _with_delivery_count(msg, entry.deliveries - 1)
        return tag, entry.deliveries > 1, msg, queue.message_count

    # --- settle --------------------------------------------------------------------------

    def ack(self, delivery_tag: int, multiple: bool) -> None:
        if self.tx_mode:
            self._check_tags(delivery_tag, multiple)
            self._tx_ops.append(("ack", delivery_tag, multiple))
            return
        for queue, entry, consumer, _ in self._take(delivery_tag, multiple):
            if entry.msg.trace is not None:
                self._trace_settle("acked", queue, entry)
            queue.settle(entry, consumer)
        self._redispatch()

    def nack(self, delivery_tag: int, multiple: bool, requeue: bool, event: str = "nacked") -> None:
        if self.tx_mode:
            self._check_tags(delivery_tag, multiple)
            self._tx_ops.append(("nack", delivery_tag, multiple, requeue))
            return
        self._settle_back(self._take(delivery_tag, multiple), requeue, event)

    def reject(self, delivery_tag: int, requeue: bool) -> None:
        self.nack(delivery_tag, False, requeue, "rejected")

    def recover(self, requeue: bool = True) -> None:
        """basic.recover: every unacked delivery goes back to its queue."""
        self._settle_back(self._take(0, True), True)

    def _settle_back(self, deliveries: list[Delivery], requeue: bool, event: str = "requeued") -> None:
        touched: dict[int, Queue] = {}
        for queue, entry, consumer, _ in deliveries:
            if entry.msg.trace is not None:
                self._trace_settle("requeued" if requeue else event, queue, entry, event)
            if requeue:
                queue.requeue(entry, consumer)
            else:
                queue.discard(entry, consumer)
            touched[id(queue)] = queue
        for queue in touched.values():
            if not queue.deleted:
                queue.dispatch()
        self._redispatch()

    def _take(self, delivery_tag: int, multiple: bool) -> list[Delivery]:
        """Remove and return the deliveries a settle covers; an unknown tag is a 406."""
        unacked = self.unacked
        if not multiple:
            delivery = unacked.pop(delivery_tag, None)
            if delivery is None:
                return self._late_settle(delivery_tag)
            self.unacked_count -= 1
            if self.leases is not None:
                self.leases.drop(delivery_tag)
            if delivery_tag == self._low_tag:
                self._advance_low()
            return [delivery]
        upto = self.next_tag - 1 if delivery_tag == 0 else delivery_tag
        if delivery_tag and delivery_tag not in unacked and not self._is_late(delivery_tag):
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")
        low = self._low_tag
        taken = []
        for tag in range(low, upto + 1):
            delivery = unacked.pop(tag, None)
            if delivery is not None:
                taken.append(delivery)
        self.unacked_count -= len(taken)
        if self.leases is not None:
            self._unlease_range(low, upto)
        self._low_tag = max(low, upto + 1)
        self._advance_low()
        return taken

    # --- leases (ferrymq.core.lease) -------------------------------------------------------

    def _leases(self) -> Leases:
        if self.leases is None:
            self.leases = Leases()
            self.broker.leased.add(self)
        return self.leases

    def _lease(self, tags: list[int], lease_ms: int) -> None:
        leases = self._leases()
        deadline = self.broker.clock.monotonic_ms() + lease_ms
        for tag in tags:
            leases.hold(tag, deadline)

    def _take_back(self, tags: list[int], event: str) -> int:
        """Return these unacked deliveries to their queues (redelivered, counted as a delivery);
        the tags are remembered so a late settle is ignored. How many were taken back."""
        unacked = self.unacked
        tags = [tag for tag in tags if tag in unacked]
        taken = [unacked.pop(tag) for tag in tags]
        self.unacked_count -= len(taken)
        self._advance_low()
        self._leases().taken_back(tags)
        self._settle_back(taken, True, event)
        return len(taken)

    def expire_leases(self, now_ms: int) -> None:
        """Take back every delivery whose lease has ended (the broker's tick calls this)."""
        if self.leases is not None and not self.closed:
            tags = self.leases.due(now_ms)
            if tags:
                self.broker.counters["leases_expired"] += self._take_back(tags, "lease_expired")

    def _is_late(self, tag: int) -> bool:
        return self.leases is not None and self.leases.is_late(tag)

    def _late_settle(self, tag: int) -> list[Delivery]:
        """A settle of a tag that is not unacked: ignored if its lease took it back, else a 406."""
        if self.leases is None or not self.leases.forget_late(tag):
            raise PreconditionFailed(f"unknown delivery tag {tag}")
        self.broker.counters["late_settles_ignored"] += 1
        return []

    def _unlease_range(self, low: int, upto: int) -> None:
        """A multiple settle covered ``low..upto``: those leases end, taken-back tags are forgotten."""
        assert self.leases is not None
        deadlines = self.leases.deadlines
        if deadlines:
            unlease = deadlines.pop
            for tag in range(low, upto + 1):
                unlease(tag, None)
        self.broker.counters["late_settles_ignored"] += self.leases.forget_late_upto(upto)

    def _advance_low(self) -> None:
        low, unacked, end = self._low_tag, self.unacked, self.next_tag
        while low < end and low not in unacked:
            low += 1
        self._low_tag = low

    def _check_tags(self, delivery_tag: int, multiple: bool) -> None:
        if (delivery_tag or not multiple) and delivery_tag not in self.unacked \
                and not self._is_late(delivery_tag):
            raise PreconditionFailed(f"unknown delivery tag {delivery_tag}")

    def _redispatch(self) -> None:
        """Credit was freed: let every queue this channel consumes from deliver again."""
        if len(self.consumers) == 1:
            for consumer in self.consumers.values():
                consumer.queue.dispatch()
            return
        seen: set[int] = set()
        for consumer in list(self.consumers.values()):
            queue = consumer.queue
            if id(queue) not in seen:
                seen.add(id(queue))
                queue.dispatch()

    def set_deliverable(self, deliverable: bool) -> None:
        """channel.flow or output backpressure; resuming lets queues deliver again."""
        self.deliverable = deliverable
        if deliverable:
            self._redispatch()

    # --- tx --------------------------------------------------------------------------------

    def tx_select(self) -> None:
        self.tx_mode = True

    def tx_commit(self) -> None:
        ops, self._tx_ops = self._tx_ops, []
        self.tx_mode = False
        try:
            for op in ops:
                getattr(self, op[0])(*op[1:])
        finally:
            self.tx_mode = True

    def tx_rollback(self) -> None:
        self._tx_ops = []

    # --- timers and close ------------------------------------------------------------------

    def _timeout_ms(self, consumer: Consumer | None) -> int:
        if consumer is not None:
            if consumer.timeout_ms is not None:
                return consumer.timeout_ms
            if consumer.queue.args.consumer_timeout_ms is not None:
                return consumer.queue.args.consumer_timeout_ms
        return self.broker.consumer_timeout_ms

    def tick(self, now_ms: int) -> None:
        """Close the channel (406) when a delivery outlived its consumer timeout, as RabbitMQ 3.12+.
        A leased delivery is exempt: its lease, which the consumer can extend, governs it instead."""
        if self.closed or not self.unacked:
            return
        leased = self.leases.deadlines if self.leases is not None else {}
        for tag, (_, _, consumer, delivered_at) in self.unacked.items():
            if tag in leased:
                continue
            timeout = self._timeout_ms(consumer)
            if delivered_at + timeout <= now_ms:
                self.emit((CLOSE, 406, (
                    f"PRECONDITION_FAILED - delivery acknowledgement on channel {self.number} "
                    f"timed out. Timeout value used: {timeout} ms. This timeout value can be "
                    "configured, see consumers doc guide to learn more")))
                self.closed = True
                return

    def close(self) -> None:
        """The channel is gone: cancel its consumers, requeue its unacked deliveries in order."""
        self.closed = True
        self.broker.counters["received"] += self.received
        self.received = 0
        self.cancel(self.reply_to_tag)  # type: ignore[arg-type]
        for tag in list(self.consumers):
            self.cancel(tag)
        self._settle_back(self._take(0, True), True)
        self.outbox.clear()


def _with_delivery_count(msg: Message, count: int) -> Message:
    headers = dict(msg.props.headers or {})
    headers["x-delivery-count"] = Long(count)
    copy = msg.with_props(msg.props.with_changes(headers=headers), msg.exchange, msg.routing_key)
    return copy
