"""A virtual host: exchanges, queues and bindings, with RabbitMQ's declare/delete/bind rules.

Errors are raised as values carrying their reply codes and RabbitMQ's texts; the front end maps
them to channel.close or connection.close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ferrymq.core.args import parse_queue_args
from ferrymq.core.deadletter import dead_letter_message
from ferrymq.core.delay import DelayQueue
from ferrymq.core.exchange import (
    Binding,
    Exchange,
    check_type,
    delay_ms,
    equivalent,
    make_exchange,
    resolve,
)
from ferrymq.core.exchange.texts import amqp_type
from ferrymq.core.fifo import FifoQueue
from ferrymq.core.lease import LEASE_EXCHANGE, LEASE_EXCHANGE_TYPE
from ferrymq.core.message import Message
from ferrymq.core.parameters import OPERATOR_POLICY, Parameters
from ferrymq.core.policy import Policy, alternate_exchange, effective, queue_arguments
from ferrymq.core.queue import Queue
from ferrymq.core.stream_queue import StreamQueue
from ferrymq.core.super_stream import is_super_stream, partition_of
from ferrymq.core.vhost_limits import Limits
from ferrymq.errors import (
    AccessRefused,
    NotFound,
    PreconditionFailed,
    ResourceLocked,
)

if TYPE_CHECKING:
    from ferrymq.core.clock import Clock
    from ferrymq.core.stats import Turn
    from ferrymq.core.store import QueueStore, StreamBackend, TopologyStore
    from ferrymq.core.trace import Tracer

REPLY_PREFIX = "amq.rabbitmq.reply-to."
BUILTIN_EXCHANGES = (
    ("amq.direct", "direct", False),
    ("amq.fanout", "fanout", False),
    ("amq.topic", "topic", False),
    ("amq.headers", "headers", False),
    ("amq.match", "headers", False),
    ("amq.rabbitmq.trace", "topic", True),
    (LEASE_EXCHANGE, LEASE_EXCHANGE_TYPE, False),  # FerryMQ extension: the channel acts on its publishes
)
# Queue arguments RabbitMQ compares on redeclare (others may differ freely).
EQUIVALENCE_KEYS = (
    "x-expires", "x-message-ttl", "x-dead-letter-exchange", "x-dead-letter-routing-key",
    "x-max-length", "x-max-length-bytes", "x-max-priority", "x-overflow", "x-queue-mode",
    "x-queue-type", "x-single-active-consumer", "x-delivery-limit",
)


class ReplyTarget(Protocol):
    """A channel consuming from amq.rabbitmq.reply-to, as the vhost sees it."""

    def deliver_reply(self, routing_key: str, msg: Message) -> None: ...


Authorise = Callable[[str, str, str], None]  # (kind, resource type, name): raises when refused


class Services(Protocol):
    """What a vhost needs of the broker that holds it. Declared here, so the vhost never imports
    the broker: the broker passes itself in and satisfies this structurally (no import circle)."""

    clock: Clock
    topology: TopologyStore
    streams: StreamBackend | None
    reply_channels: Any  # token -> ReplyTarget (the broker's own dict of channels)
    limits: Limits  # per-vhost limits (max-queues)
    overloaded: set[Queue]
    turn: Turn  # the shell's per-turn time stamp (ferrymq.core.stats)
    tracer: Tracer  # sampled message traces (ferrymq.core.trace)
    parameters: Parameters  # runtime parameters: where operator policies are stored

    def unique_token(self) -> str: ...

    def watch_queue(self, queue: Queue, force: bool = False) -> None: ...

    def unwatch_queue(self, queue: Queue) -> None: ...


class VHost:
    def __init__(self, name: str, broker: Services) -> None:
        self.name = name
        self.broker = broker
        self.clock = broker.clock
        self.turn = broker.turn
        self.exchanges: dict[str, Exchange] = {}
        self.queues: dict[str, Queue] = {}
        # (exchange, routing key, message, offset in the delay store or -1)
        self.delayed: DelayQueue[tuple[str, str, Message, int]] = DelayQueue()
        self._delay_store: QueueStore | None = None
        self.policies: dict[str, Policy] = {}
        self.operator_policies: dict[str, Policy] = {}  # stored as runtime parameters (operator_policy)
        self.exchange_policies: dict[str, Policy] = {}  # exchange name -> its policy in force
        for name_, type_, internal in BUILTIN_EXCHANGES:
            self.exchanges[name_] = make_exchange(name_, type_, True, False, internal, {})

    # --- lookups -------------------------------------------------------------------------

    def _no(self, kind: str, name: str) -> NotFound:
        return NotFound(f"no {kind} '{name}' in vhost '{self.name}'")

    def get_exchange(self, name: str) -> Exchange:
        ex = self.exchanges.get(name)
        if ex is None:
            raise self._no("exchange", name)
        return ex

    def get_queue(self, name: str, connection: object) -> Queue:
        queue = self.queues.get(name)
        if queue is None:
            raise self._no("queue", name)
        self._check_exclusive(queue, connection)
        return queue

    def _check_exclusive(self, queue: Queue, connection: object) -> None:
        if queue.exclusive_owner is not None and queue.exclusive_owner is not connection:
            raise ResourceLocked(
                f"cannot obtain exclusive access to locked queue '{queue.name}' in vhost "
                f"'{self.name}'. It could be originally declared on another connection or the "
                "exclusive property value does not match that of the original declaration."
            )

    # --- exchanges -----------------------------------------------------------------------

    def declare_exchange(
        self, name: str, type_: str, *, passive: bool = False, durable: bool = False,
        auto_delete: bool = False, internal: bool = False, arguments: dict[str, Any] | None = None,
        authorise: Authorise | None = None,
    ) -> Exchange:
        """``authorise(kind, resource type, name)`` raises on a refused permission, checked where
        RabbitMQ checks it: configure on the exchange, and for a new one with an alternate
        exchange, read on it and write on the alternate."""
        if not passive:
            check_type(type_)  # RabbitMQ checks the type first, even on a redeclare
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        if authorise is not None and not passive:
            authorise("configure", "exchange", name)
        existing = self.exchanges.get(name)
        if passive:
            if existing is None:
                raise self._no("exchange", name)
            return existing
        if existing is not None:
            equivalent(existing, type_, durable, auto_delete, internal, arguments or {}, self.name)
            return existing
        if name.startswith("amq."):
            raise AccessRefused(f"exchange name '{name}' contains reserved prefix 'amq.*'")
        alternate = (arguments or {}).get("alternate-exchange")
        if authorise is not None and isinstance(alternate, str):
            authorise("read", "exchange", name)
            authorise("write", "exchange", alternate)
        ex = make_exchange(name, type_, durable, auto_delete, internal, arguments or {},
                           vhost=self.name)
        if durable:
            self.broker.topology.exchange_declared(self.name, name, type_, auto_delete, internal,
                                                   arguments or {})
        self.exchanges[name] = ex
        if self.policies:
            self._apply_exchange_policy(ex)
        return ex

    def delete_exchange(self, name: str, if_unused: bool = False) -> None:
        if not name:
            raise AccessRefused("operation not permitted on the default exchange")
        if name.startswith("amq."):  # before the lookup, as RabbitMQ's check_exchange_deletion
            raise AccessRefused(f"deletion of system exchange '{name}' in vhost '{self.name}' not allowed")
        ex = self.exchanges.get(name)
        if ex is None:
            return
        if if_unused and ex.has_bindings():
            raise PreconditionFailed(f"exchange '{name}' in vhost '{self.name}' in use")
        self._drop_exchange(ex)

    def change_exchange_arguments(self, ex: Exchange, arguments: dict[str, Any]) -> None:
        """Replace an exchange's arguments in place (SNS keeps a topic's attributes and subscriptions
        there; AMQP has no such method). The alternate exchange cannot change this way."""
        if arguments.get("alternate-exchange") != ex.arguments.get("alternate-exchange"):
            raise PreconditionFailed(
                f"the alternate exchange of '{ex.name}' in vhost '{self.name}' cannot change")
        ex.arguments = dict(arguments)
        if ex.durable:
            self.broker.topology.exchange_arguments_changed(self.name, ex.name, ex.arguments)

    def _drop_exchange(self, ex: Exchange) -> None:
        del self.exchanges[ex.name]
        if is_super_stream(ex) and self.broker.streams is not None:
            self.broker.streams.exchange_gone(ex.name)
        self.exchange_policies.pop(ex.name, None)
        if ex.durable:
            self.broker.topology.exchange_deleted(self.name, ex.name)
        for b in ex.bindings():
            ex.unbind(b)
        for other in list(self.exchanges.values()):
            for b in other.bindings():
                if b.destination_is_exchange and b.destination == ex.name:
                    self._unbind(other, b)

    # --- queues --------------------------------------------------------------------------

    def _check_dead_letter_exchange(self, queue: str, dlx: Any, authorise: Authorise | None) -> None:
        """rabbit_channel's checks of a new queue's dead-letter exchange, after the vhost's queue
        limit and before the queue's own arguments: its type, then read on the queue and write on
        the exchange."""
        if dlx is None:
            return
        if not isinstance(dlx, str):
            raise PreconditionFailed(f"invalid type '{amqp_type(dlx)}' for arg 'x-dead-letter-exchange' "
                                     f"in queue '{queue}' in vhost '{self.name}'")
        if authorise is not None:
            authorise("read", "queue", queue)
            authorise("write", "exchange", dlx)

    def declare_queue(
        self, name: str, *, connection: object, passive: bool = False, durable: bool = False,
        exclusive: bool = False, auto_delete: bool = False,
        arguments: dict[str, Any] | None = None, authorise: Authorise | None = None,
    ) -> Queue:
        """``authorise`` as for exchanges: configure on the queue (a server-named one too), and for
        a new queue with a dead-letter exchange, read on it and write on that exchange."""
        existing = self.queues.get(name) if name else None
        if passive:
            if existing is None:
                raise self._no("queue", name)
            self._check_exclusive(existing, connection)
            return existing
        generated = not name
        if generated:
            name = f"amq.gen-{self.broker.unique_token()}"
        if authorise is not None:
            authorise("configure", "queue", name)
        if existing is not None:
            self._check_exclusive(existing, connection)
            self._queue_equivalent(existing, durable, exclusive, auto_delete, arguments or {})
            existing.touch()
            return existing
        if not generated and name.startswith("amq."):
            raise AccessRefused(f"queue name '{name}' contains reserved prefix 'amq.*'")
        self.broker.limits.check_queues(self.name, name, len(self.queues))
        self._check_dead_letter_exchange(name, (arguments or {}).get("x-dead-letter-exchange"), authorise)
        stream = (arguments or {}).get("x-queue-type") == "stream"  # stream policy keys differ: none here
        policy, operator = self._queue_policies(name) if not stream else (None, None)
        args = parse_queue_args(queue_arguments(arguments or {}, policy, operator), name, self.name)
        owner = connection if exclusive else None
        if args.queue_type == "stream" and self.broker.streams is not None:
            queue: Queue = self._stream_queue(name, args, durable, exclusive, auto_delete, arguments)
        else:
            kind = FifoQueue if args.fifo else Queue
            queue = kind(name, self, self.clock, args, durable=durable, auto_delete=auto_delete,
                         exclusive_owner=owner, arguments=dict(arguments or {}))
        if isinstance(queue, StreamQueue):  # its messages live in the stream; only the queue is stored
            self.broker.topology.queue_declared(self.name, name, auto_delete, queue.arguments)
        elif durable and owner is None:  # exclusive queues die with their connection: never stored
            store = self.broker.topology.queue_declared(self.name, name, auto_delete, queue.arguments)
            if store is not None:
                queue.attach_store(store)
        self.queues[name] = queue
        queue.policy, queue.operator_policy = policy, operator
        self.broker.watch_queue(queue)
        return queue

    def change_queue_arguments(self, queue: Queue, arguments: dict[str, Any]) -> None:
        """Replace a queue's arguments in place (SQS SetQueueAttributes; AMQP has no such method).
        They are validated as a declare would validate them and applied as a policy change is; the
        queue's kind (FIFO or not, its type) cannot change this way."""
        args = parse_queue_args(queue_arguments(arguments, queue.policy, queue.operator_policy), queue.name,
                                self.name)
        if args.fifo != queue.args.fifo or args.queue_type != queue.args.queue_type:
            raise PreconditionFailed(
                f"the kind of queue '{queue.name}' in vhost '{self.name}' cannot change")
        queue.arguments = dict(arguments)
        if queue.store is not None:
            self.broker.topology.queue_arguments_changed(self.name, queue.name, queue.arguments)
        queue.apply_args(args)

    def _stream_queue(self, name: str, args: Any, durable: bool, exclusive: bool, auto_delete: bool,
                      arguments: dict[str, Any] | None) -> StreamQueue:
        for prop, bad in (("non-durable", not durable), ("exclusive-owner", exclusive),
                          ("auto-delete", auto_delete)):
            if bad:
                raise PreconditionFailed(
                    f"invalid property '{prop}' for queue '{name}' in vhost '{self.name}'")
        assert self.broker.streams is not None
        partition = partition_of(self.exchanges, name, arguments or {})
        stream = self.broker.streams.open(self.name, name, dict(arguments or {}), partition)
        return StreamQueue(name, self, self.clock, args, durable=True, arguments=dict(arguments or {}),
                           stream=stream)

    def _queue_equivalent(
        self, q: Queue, durable: bool, exclusive: bool, auto_delete: bool, args: dict[str, Any]
    ) -> None:
        where = f"for queue '{q.name}' in vhost '{self.name}'"
        for key, new, old in (("durable", durable, q.durable),
                              ("exclusive", exclusive, q.exclusive_owner is not None),
                              ("auto_delete", auto_delete, q.auto_delete)):
            if new != old:
                raise PreconditionFailed(
                    f"inequivalent arg '{key}' {where}: received '{_b(new)}' but current is "
                    f"'{_b(old)}'"
                )
        for key in EQUIVALENCE_KEYS:
            new_v, old_v = args.get(key), q.arguments.get(key)
            if key == "x-queue-type" and {new_v, old_v} <= {None, "classic"}:
                continue
            if new_v != old_v:
                # RabbitMQ prints bare values when both sides are set, typed ones otherwise.
                both = new_v is not None and old_v is not None
                received = f"'{new_v}'" if both else _describe(new_v)
                current = f"'{old_v}'" if both else _describe(old_v)
                raise PreconditionFailed(
                    f"inequivalent arg '{key}' {where}: received {received} but current is {current}"
                )

    def delete_queue(
        self, name: str, *, connection: object, if_unused: bool = False, if_empty: bool = False
    ) -> int:
        queue = self.queues.get(name)
        if queue is None:
            return 0
        self._check_exclusive(queue, connection)
        where = f"queue '{name}' in vhost '{self.name}'"
        if if_unused and queue.consumers:
            raise PreconditionFailed(f"{where} in use")
        if if_empty and queue.message_count:
            raise PreconditionFailed(f"{where} not empty")
        return self.drop_queue(queue)

    def drop_queue(self, queue: Queue) -> int:
        """Remove a queue: its consumers are cancelled (notified), its bindings removed."""
        count = queue.message_count
        queue.purge()
        queue.deleted = True
        self.queues.pop(queue.name, None)
        self.broker.unwatch_queue(queue)
        for consumer in list(queue.consumers):
            queue.consumers.remove(consumer)
            consumer.channel.cancel_by_server(consumer)
        for ex in list(self.exchanges.values()):
            for b in ex.bindings():
                if not b.destination_is_exchange and b.destination == queue.name:
                    self._unbind(ex, b)
        if queue.store is not None or isinstance(queue, StreamQueue):
            self.broker.topology.queue_deleted(self.name, queue.name)
        if queue.store is not None:
            queue.store.drop()
        if isinstance(queue, StreamQueue):
            queue.stream.delete()  # as RabbitMQ: deleting a stream queue deletes its data
        return count

    def purge_queue(self, name: str, connection: object) -> int:
        return self.get_queue(name, connection).purge()

    def maybe_auto_delete(self, queue: Queue) -> None:
        if queue.auto_delete and queue.had_consumer and not queue.consumers and not queue.deleted:
            self.drop_queue(queue)

    def connection_closed(self, connection: object) -> None:
        for queue in list(self.queues.values()):
            if queue.exclusive_owner is connection:
                self.drop_queue(queue)

    # --- bindings ------------------------------------------------------------------------

    def bind(
        self, destination: str, source: str, routing_key: str, arguments: dict[str, Any] | None,
        *, to_exchange: bool, connection: object,
    ) -> None:
        ex, binding = self._binding(destination, source, routing_key, arguments, to_exchange,
                                    connection)
        ex.bind(binding)
        if self._durable_binding(ex, binding):
            self.broker.topology.binding_added(self.name, ex.name, binding.destination, to_exchange,
                                               routing_key, arguments or {})

    def unbind(
        self, destination: str, source: str, routing_key: str, arguments: dict[str, Any] | None,
        *, to_exchange: bool, connection: object,
    ) -> None:
        ex, binding = self._binding(destination, source, routing_key, arguments, to_exchange,
                                    connection)
        self._unbind(ex, binding)

    def _binding(
        self, destination: str, source: str, routing_key: str, arguments: dict[str, Any] | None,
        to_exchange: bool, connection: object,
    ) -> tuple[Exchange, Binding]:
        if not source or (to_exchange and not destination):
            raise AccessRefused("operation not permitted on the default exchange")
        if source == LEASE_EXCHANGE or (to_exchange and destination == LEASE_EXCHANGE):
            raise AccessRefused(f"operation not permitted on exchange '{LEASE_EXCHANGE}': it routes nothing")
        if to_exchange:
            self.get_exchange(destination)
        else:
            self.get_queue(destination, connection)
        ex = self.get_exchange(source)
        return ex, Binding.of(source, destination, to_exchange, routing_key, arguments)

    def _durable_binding(self, ex: Exchange, binding: Binding) -> bool:
        """RabbitMQ keeps a binding across restarts when both of its ends are durable."""
        return ex.durable and self._durable_destination(binding)

    def _durable_destination(self, binding: Binding) -> bool:
        if binding.destination_is_exchange:
            dest = self.exchanges.get(binding.destination)
            return dest is not None and dest.durable
        queue = self.queues.get(binding.destination)
        return queue is not None and queue.durable and queue.exclusive_owner is None

    def _unbind(self, ex: Exchange, binding: Binding) -> None:
        durable = self._durable_binding(ex, binding)
        removed = ex.unbind(binding)
        if removed and durable:
            self.broker.topology.binding_removed(
                self.name, ex.name, binding.destination, binding.destination_is_exchange,
                binding.routing_key, binding.args())
        if removed and ex.auto_delete and not ex.has_bindings():
            self._drop_exchange(ex)

    # --- publish -------------------------------------------------------------------------

    def check_publish(self, exchange: str, msg: Message, username: str | None) -> Exchange | None:
        """``username`` None: an ``impersonator`` publishing, whose user_id may name anyone."""
        user_id = msg.props.user_id
        if user_id is not None and username is not None and user_id != username:
            raise PreconditionFailed(
                f"user_id property set to '{user_id}' but authenticated user was '{username}'"
            )
        if not exchange:
            return None
        ex = self.get_exchange(exchange)
        if ex.internal:
            raise AccessRefused(
                f"cannot publish to internal exchange '{exchange}' in vhost '{self.name}'"
            )
        return ex

    def publish(
        self, exchange: str, routing_key: str, msg: Message, username: str | None = ""
    ) -> tuple[bool, bool]:
        """Route and enqueue. Returns (routed to at least one queue, accepted by all of them)."""
        if not exchange and msg.props.user_id is None:
            queue = self.queues.get(routing_key)
            if queue is None:
                return self._publish_reply(routing_key, msg), True
            return True, queue.publish(msg)
        ex = self.check_publish(exchange, msg, username)
        if ex is not None and ex.type == "x-delayed-message":
            due = delay_ms(msg.props.headers)
            if due > 0:
                self.hold_delayed(exchange, routing_key, msg, due, durable=ex.durable)
                return True, True
        return self.route_and_enqueue(ex, routing_key, msg)

    def hold_delayed(self, exchange: str, routing_key: str, msg: Message, due_ms: int, *,
                     durable: bool = True) -> None:
        """Route ``msg`` ``due_ms`` from now, through ``exchange`` as it is then ("" is the default
        exchange). The x-delayed-message exchange and SQS's DelaySeconds both wait here; a
        persistent message through a durable exchange waits in the delay store across restarts."""
        offset = -1
        if durable and msg.persistent and self.attach_delay_store() is not None:
            assert self._delay_store is not None
            offset = self._delay_store.log_publish(msg, self.clock.now_ms() + due_ms, False)
        self.delayed.push(self.clock.monotonic_ms() + due_ms, (exchange, routing_key, msg, offset))

    def _publish_reply(self, routing_key: str, msg: Message) -> bool:
        if not routing_key.startswith(REPLY_PREFIX):
            return False
        channel: ReplyTarget | None = self.broker.reply_channels.get(routing_key[len(REPLY_PREFIX):])
        if channel is None:
            return False
        channel.deliver_reply(routing_key, msg)
        return True

    def route_and_enqueue(
        self, ex: Exchange | None, routing_key: str, msg: Message, skip: frozenset[str] = frozenset()
    ) -> tuple[bool, bool]:
        queues = self.route(ex, routing_key, msg.props.headers)
        accepted = True
        routed = False
        for name in queues:
            queue = self.queues.get(name)
            if queue is None or name in skip:
                continue
            routed = True
            accepted = queue.publish(msg) and accepted
        return routed, accepted

    def route(self, ex: Exchange | None, routing_key: str, headers: dict | None) -> list[str]:
        if ex is None:
            return [routing_key] if routing_key in self.queues else []
        return resolve(ex, routing_key, headers, self.exchanges.get).queues

    # --- what queues ask of their vhost (ferrymq.core.queue.QueueHost) ---------------------

    def watch_queue(self, queue: Queue, force: bool = False) -> None:
        self.broker.watch_queue(queue, force)

    def queue_overloaded(self, queue: Queue) -> None:
        """A consumed queue passed the flow high-water mark: publishers wait until it drains."""
        self.broker.overloaded.add(queue)

    def dead_letter_sources(self) -> dict[str, list[str]]:
        """Dead-letter queue -> the queues whose dead letters can land in it, by the same DLX and
        DL-key rules ``dead_letter`` applies. Without a DL key the message's own key decides, which
        is not known in advance: every queue the DLX binds is then a possible target."""
        out: dict[str, list[str]] = {}
        for queue in self.queues.values():
            dlx, key = queue.args.dead_letter_exchange, queue.args.dead_letter_routing_key
            ex = self.exchanges.get(dlx) if dlx else None
            if dlx is None or (dlx and ex is None) or (ex is None and key is None):
                continue
            targets = (self.route(ex, key, None) if key is not None
                       else [b.destination for b in ex.bindings()] if ex is not None else [])
            for target in dict.fromkeys(targets):
                if target in self.queues:
                    out.setdefault(target, []).append(queue.name)
        return out

    def dead_letter(self, queue: Queue, msg: Message, reason: str) -> None:
        """Republish through the queue's DLX with x-death headers; without a DLX it is dropped."""
        if msg.trace is not None:
            self._trace_dead(queue, msg, reason)
        dlx = queue.args.dead_letter_exchange
        if dlx is None:
            return
        ex = self.exchanges.get(dlx) if dlx else None
        if dlx and ex is None:
            return
        queue.counters["dead_lettered"] += 1
        routing_key = queue.args.dead_letter_routing_key or msg.routing_key
        dead = dead_letter_message(msg, queue.name, reason, self.clock.now_ms(), dlx, routing_key)
        dead.trace = msg.trace
        self.route_and_enqueue(ex, routing_key, dead, _cycle_queues(msg, reason))

    def _trace_dead(self, queue: Queue, msg: Message, reason: str) -> None:
        """A traced message leaves ``queue`` by expiry, length limit or dead-lettering."""
        assert msg.trace is not None
        tracer = self.broker.tracer
        if reason == "expired":
            tracer.record(msg.trace, "expired", queue.name, "per-message or queue TTL")
        elif reason == "maxlen":
            tracer.record(msg.trace, "dropped", queue.name, "max length (x-overflow)")
        dlx = queue.args.dead_letter_exchange
        if dlx is not None and (not dlx or dlx in self.exchanges):
            rk = queue.args.dead_letter_routing_key or msg.routing_key
            targets = self.route(self.exchanges.get(dlx) if dlx else None, rk, msg.props.headers)
            tracer.record(msg.trace, "dead_lettered", queue.name,
                          f"reason={reason} to exchange={dlx!r} routing_key={rk!r} "
                          f"queues={','.join(targets) or '-'}")
            for name in targets:
                target = self.queues.get(name)
                if target is not None and target.store is not None and msg.persistent:
                    tracer.awaiting_store.append((msg.trace, name))

    # --- policies (ferrymq.core.policy) ------------------------------------------------------

    def set_policy(self, policy: Policy) -> bool:
        """Add or replace a policy and apply it live. True if it was new. The caller stores it."""
        new = policy.name not in self.policies
        self.policies[policy.name] = policy
        self.broker.topology.policy_set(self.name, policy.name, policy.as_json())
        self.apply_policies()
        return new

    def clear_policy(self, name: str) -> bool:
        """Remove a policy; what it set goes back to the objects' own arguments (or the next match)."""
        if self.policies.pop(name, None) is None:
            return False
        self.broker.topology.policy_cleared(self.name, name)
        self.apply_policies()
        return True

    def set_operator_policy(self, policy: Policy) -> bool:
        """Add or replace an operator policy (stored as RabbitMQ does, as a runtime parameter) and
        apply it live. True if it was new."""
        new = policy.name not in self.operator_policies
        self.operator_policies[policy.name] = policy
        value = {k: v for k, v in policy.as_json().items() if k not in ("vhost", "name")}
        self.broker.parameters.set(OPERATOR_POLICY, self.name, policy.name, value)
        self.apply_policies()
        return new

    def clear_operator_policy(self, name: str) -> bool:
        if self.operator_policies.pop(name, None) is None:
            return False
        self.broker.parameters.clear(OPERATOR_POLICY, self.name, name)
        self.apply_policies()
        return True

    def apply_policies(self) -> None:
        """Re-derive every queue's and exchange's effective arguments from the policies in force.
        Queues that had and get no policy are left alone (their hot path is unchanged)."""
        for queue in list(self.queues.values()):
            policy, operator = self._queue_policies(queue.name)
            unchanged = policy is queue.policy is None and operator is queue.operator_policy is None
            if unchanged or isinstance(queue, StreamQueue):
                continue
            queue.policy, queue.operator_policy = policy, operator
            merged = queue_arguments(queue.arguments, policy, operator)
            queue.apply_args(parse_queue_args(merged, queue.name, self.name))
        for ex in self.exchanges.values():
            self._apply_exchange_policy(ex)

    def _queue_policies(self, name: str) -> tuple[Policy | None, Policy | None]:
        """The policy and the operator policy in force for a queue of this name."""
        policy = effective(self.policies, "queue", name) if self.policies else None
        operator = effective(self.operator_policies, "queue", name) if self.operator_policies else None
        return policy, operator

    def _apply_exchange_policy(self, ex: Exchange) -> None:
        policy = effective(self.policies, "exchange", ex.name) if self.policies else None
        if policy is None and ex.name not in self.exchange_policies:
            return
        if policy is None:
            del self.exchange_policies[ex.name]
        else:
            self.exchange_policies[ex.name] = policy
        ex.alternate = alternate_exchange(ex.arguments, policy)

    # --- timers --------------------------------------------------------------------------

    def tick(self, now_ms: int) -> None:
        for exchange, routing_key, msg, offset in self.delayed.pop_due(now_ms):
            ex = self.exchanges.get(exchange) if exchange else None
            if ex is not None or not exchange:
                self.route_and_enqueue(ex, routing_key, msg)
            if offset >= 0 and self._delay_store is not None:  # settled once its queues' copies are committed
                self._delay_store.log_moved(offset)

    def attach_delay_store(self) -> QueueStore | None:
        """Open (once) where delayed persistent messages wait; what it holds waits again, due at
        the same wall-clock time (the delayed-message plugin keeps them across restarts too)."""
        if self._delay_store is None:
            store = self.broker.topology.delayed_store(self.name)
            if store is None:
                return None
            self._delay_store = store
            loaded, _paged, _ = store.recover(2**62)
            mono, wall = self.clock.monotonic_ms(), self.clock.now_ms()
            for stored in loaded:
                m = stored.msg
                due = mono + max(0, stored.expires_wall_ms - wall)
                self.delayed.push(due, (m.exchange, m.routing_key, m, stored.offset))
        return self._delay_store


def _cycle_queues(msg: Message, reason: str) -> frozenset[str]:
    """Queues a dead letter must skip: it died there before with no rejection in the whole
    cycle, so routing it there again would loop forever (RabbitMQ drops it the same way)."""
    if reason == "rejected":
        return frozenset()
    deaths = (msg.props.headers or {}).get("x-death") or []
    if any(d.get("reason") == "rejected" for d in deaths):
        return frozenset()
    return frozenset(d["queue"] for d in deaths if isinstance(d, dict) and isinstance(d.get("queue"), str))


def _b(value: bool) -> str:
    return "true" if value else "false"


def _describe(value: Any) -> str:
    """How RabbitMQ prints an argument in an inequivalence error."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "signedint" if -(2**31) <= value < 2**31 else "long"
    elif isinstance(value, str | bytes):
        kind = "longstr"
    else:
        kind = type(value).__name__
    return f"the value '{value}' of type '{kind}'"
