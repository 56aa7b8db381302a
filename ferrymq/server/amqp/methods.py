"""The rare AMQP methods, mapped to the core: one small function per method, found by a table.

Each function takes the connection, the core channel and the decoded pamqp method, and returns
the reply method (or None). ``nowait`` suppresses the reply, as the spec says.

The connection is anything with the small ``MethodConnection`` interface: the server's
AMQPConnection, and the simulator's node connection (ferrymq.sim.amqp_node), which runs this very
table. No asyncio here (an import contract keeps it so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.core.permissions import reserved_name
from ferrymq.errors import AccessRefused, NotImplemented_, PreconditionFailed
from ferrymq.server.amqp.effects import EffectConnection

if TYPE_CHECKING:
    from ferrymq.core.channel import Channel


class MethodConnection(EffectConnection, Protocol):
    """What a method needs of its connection besides the codec and the reply hold."""

    last_queue: dict[int, str]  # channel -> the queue last declared on it (an empty name means it)

    def drain(self, ch: Channel) -> None: ...


Handler = Callable[[MethodConnection, "Channel", Any], Frame | None]
METHODS: dict[type, Handler] = {}


def method(cls: type) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        METHODS[cls] = fn
        return fn

    return register


def dispatch(conn: MethodConnection, ch: Channel, m: Frame) -> None:
    """Run one method on a channel and send its reply. Effects the core queued before this method
    go out first, so a reply never overtakes a delivery made before it (the server and the
    simulator both dispatch through here)."""
    conn.drain(ch)
    handler = METHODS.get(type(m))
    if handler is None:
        raise NotImplemented_(f"method {m.name} not implemented")
    reply = handler(conn, ch, m)
    if reply is not None:
        conn.codec.send_method(ch.number, reply)


def _reply(m: Any, reply: Frame) -> Frame | None:
    return None if getattr(m, "nowait", False) else reply


def _authorise_binding(ch: Channel, destination_type: str, destination: str, source: str,
                       routing_key: str) -> None:
    """rabbit_channel:binding_action_with_checks: write on the destination, read on the source,
    then the source's topic permission on the routing key. The default exchange's own refusal
    comes from the vhost, after the destination's check, as RabbitMQ orders them."""
    ch.require("write", destination_type, destination)
    if not source or (destination_type == "exchange" and not destination):
        return
    ch.require("read", "exchange", source)
    ch.require_topic("read", source, routing_key)


# --- exchange ------------------------------------------------------------------------------


@method(c.Exchange.Declare)
def exchange_declare(conn: MethodConnection, ch: Channel, m: c.Exchange.Declare) -> Frame | None:
    ch.vhost.declare_exchange(
        m.exchange, m.exchange_type, passive=m.passive, durable=m.durable,
        auto_delete=m.auto_delete, internal=m.internal, arguments=m.arguments or {},
        authorise=ch.require,
    )
    return _reply(m, c.Exchange.DeclareOk())


@method(c.Exchange.Delete)
def exchange_delete(conn: MethodConnection, ch: Channel, m: c.Exchange.Delete) -> Frame | None:
    if m.exchange and not m.exchange.startswith("amq."):  # those two refusals come first
        ch.require("configure", "exchange", m.exchange)
    ch.vhost.delete_exchange(m.exchange, m.if_unused)
    return _reply(m, c.Exchange.DeleteOk())


@method(c.Exchange.Bind)
def exchange_bind(conn: MethodConnection, ch: Channel, m: c.Exchange.Bind) -> Frame | None:
    _authorise_binding(ch, "exchange", m.destination, m.source, m.routing_key)
    ch.vhost.bind(m.destination, m.source, m.routing_key, m.arguments, to_exchange=True,
                  connection=conn)
    return _reply(m, c.Exchange.BindOk())


@method(c.Exchange.Unbind)
def exchange_unbind(conn: MethodConnection, ch: Channel, m: c.Exchange.Unbind) -> Frame | None:
    _authorise_binding(ch, "exchange", m.destination, m.source, m.routing_key)
    ch.vhost.unbind(m.destination, m.source, m.routing_key, m.arguments, to_exchange=True,
                    connection=conn)
    return _reply(m, c.Exchange.UnbindOk())


# --- queue ---------------------------------------------------------------------------------


@method(c.Queue.Declare)
def queue_declare(conn: MethodConnection, ch: Channel, m: c.Queue.Declare) -> Frame | None:
    reserved = None if m.passive else reserved_name("queue", m.queue)
    if reserved is not None:  # before anything else, even for a queue that exists (RabbitMQ 3.10)
        raise AccessRefused(reserved)
    q = ch.vhost.declare_queue(
        m.queue, connection=conn, passive=m.passive, durable=m.durable, exclusive=m.exclusive,
        auto_delete=m.auto_delete, arguments=m.arguments or {}, authorise=ch.require,
    )
    conn.last_queue[ch.number] = q.name
    return _reply(m, c.Queue.DeclareOk(q.name, q.message_count, len(q.consumers)))


@method(c.Queue.Bind)
def queue_bind(conn: MethodConnection, ch: Channel, m: c.Queue.Bind) -> Frame | None:
    queue = m.queue or conn.last_queue.get(ch.number, "")
    _authorise_binding(ch, "queue", queue, m.exchange, m.routing_key)
    ch.vhost.bind(queue, m.exchange, m.routing_key, m.arguments, to_exchange=False,
                  connection=conn)
    return _reply(m, c.Queue.BindOk())


@method(c.Queue.Unbind)
def queue_unbind(conn: MethodConnection, ch: Channel, m: c.Queue.Unbind) -> Frame | None:
    _authorise_binding(ch, "queue", m.queue, m.exchange, m.routing_key)
    ch.vhost.unbind(m.queue, m.exchange, m.routing_key, m.arguments, to_exchange=False,
                    connection=conn)
    return c.Queue.UnbindOk()


@method(c.Queue.Purge)
def queue_purge(conn: MethodConnection, ch: Channel, m: c.Queue.Purge) -> Frame | None:
    ch.require("read", "queue", m.queue)
    return _reply(m, c.Queue.PurgeOk(ch.vhost.purge_queue(m.queue, conn)))


@method(c.Queue.Delete)
def queue_delete(conn: MethodConnection, ch: Channel, m: c.Queue.Delete) -> Frame | None:
    ch.require("configure", "queue", m.queue)
    count = ch.vhost.delete_queue(m.queue, connection=conn, if_unused=m.if_unused,
                                  if_empty=m.if_empty)
    return _reply(m, c.Queue.DeleteOk(count))


# --- basic ---------------------------------------------------------------------------------


@method(c.Basic.Qos)
def basic_qos(conn: MethodConnection, ch: Channel, m: c.Basic.Qos) -> Frame | None:
    if m.prefetch_size:
        raise NotImplemented_(f"prefetch_size!=0 ({m.prefetch_size})")
    ch.qos(m.prefetch_count, m.global_)
    return c.Basic.QosOk()


@method(c.Basic.Consume)
def basic_consume(conn: MethodConnection, ch: Channel, m: c.Basic.Consume) -> Frame | None:
    if m.queue == "amq.rabbitmq.reply-to":
        tag = ch.consume_reply_to(m.consumer_tag, m.no_ack)
        return _reply(m, c.Basic.ConsumeOk(tag))
    # Deliveries made while the consumer registers wait in the channel's outbox until the flush,
    # so the consume-ok returned here always reaches the client before the first delivery.
    tag = ch.consume(m.queue or conn.last_queue.get(ch.number, ""), m.consumer_tag,
                     no_ack=m.no_ack, exclusive=m.exclusive, arguments=m.arguments)
    return _reply(m, c.Basic.ConsumeOk(tag))


@method(c.Basic.Cancel)
def basic_cancel(conn: MethodConnection, ch: Channel, m: c.Basic.Cancel) -> Frame | None:
    ch.cancel(m.consumer_tag or "")  # pamqp types an absent short string as None
    return _reply(m, c.Basic.CancelOk(m.consumer_tag))


@method(c.Basic.Get)
def basic_get(conn: MethodConnection, ch: Channel, m: c.Basic.Get) -> Frame | None:
    got = ch.get(m.queue or conn.last_queue.get(ch.number, ""), m.no_ack)
    if got is None:
        return c.Basic.GetEmpty()
    tag, redelivered, msg, remaining = got
    conn.codec.send_get_ok(ch.number, tag, redelivered, msg.exchange, msg.routing_key,
                           remaining, msg)
    return None


@method(c.Basic.Recover)
def basic_recover(conn: MethodConnection, ch: Channel, m: c.Basic.Recover) -> Frame | None:
    ch.recover(m.requeue)
    return c.Basic.RecoverOk()


@method(c.Basic.RecoverAsync)
def basic_recover_async(conn: MethodConnection, ch: Channel, m: Any) -> Frame | None:
    ch.recover(m.requeue)
    return None


# --- confirm and tx ------------------------------------------------------------------------


@method(c.Confirm.Select)
def confirm_select(conn: MethodConnection, ch: Channel, m: c.Confirm.Select) -> Frame | None:
    if ch.tx_mode:
        raise PreconditionFailed("cannot switch from tx to confirm mode")
    ch.confirm_select()
    return _reply(m, c.Confirm.SelectOk())


@method(c.Tx.Select)
def tx_select(conn: MethodConnection, ch: Channel, m: c.Tx.Select) -> Frame | None:
    if ch.confirm_mode:
        raise PreconditionFailed("cannot switch from confirm to tx mode")
    ch.tx_select()
    return c.Tx.SelectOk()


@method(c.Tx.Commit)
def tx_commit(conn: MethodConnection, ch: Channel, m: c.Tx.Commit) -> Frame | None:
    if not ch.tx_mode:
        raise PreconditionFailed("channel is not transactional")
    ch.tx_commit()
    if conn.server.commit.must_hold():
        # As RabbitMQ: commit-ok means the transaction's persistent messages are on disk.
        conn.drain(ch)  # its confirms and deliveries keep their place before the commit-ok
        conn.server.hold(conn, ch, lambda stored: _commit_ok(conn, ch, stored))
        return None
    return c.Tx.CommitOk()


def _commit_ok(conn: MethodConnection, ch: Channel, stored: bool) -> None:
    if stored:
        conn.codec.send_method(ch.number, c.Tx.CommitOk())
    else:
        conn.codec.close_channel(ch.number, 541, "INTERNAL_ERROR - fsync failed", 90, 20)


@method(c.Tx.Rollback)
def tx_rollback(conn: MethodConnection, ch: Channel, m: c.Tx.Rollback) -> Frame | None:
    if not ch.tx_mode:
        raise PreconditionFailed("channel is not transactional")
    ch.tx_rollback()
    return c.Tx.RollbackOk()
