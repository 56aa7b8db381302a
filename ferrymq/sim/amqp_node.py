"""The simulated broker node's AMQP side: the real codec (AMQPServerConnection) and the real core.

Why its own glue: the server's glue (ferrymq/server/amqp_connection.py + amqp_methods.py) is an
asyncio Protocol bound to a transport, an event loop's clock and the durability shell's executor.
This module is the same thin mapping without asyncio, for the methods the simulated clients send:
codec events call the same core entry points (Broker.open_channel, Channel.publish/ack/nack/reject/
consume/cancel/get/qos/confirm_select, VHost.declare_*/bind), channel effects are drained as
``AMQPConnection.drain`` does (runs of publisher acks coalesced into one multiple ack, confirms held
while a commit is pending), and output is written once per turn.

The node also tells the oracle what the core did (each delivery it emitted, each settle it processed),
which the invariants need and a client cannot see.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.core.channel import CANCEL, CLOSE, CONFIRM, DELIVER, RETURN, Channel
from ferrymq.core.message import Message
from ferrymq.errors import NotImplemented_
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.server_properties import server_properties
from ferrymq.sim.network import Pipe

if TYPE_CHECKING:
    from ferrymq.core.broker import Broker
    from ferrymq.core.vhost import VHost
    from ferrymq.sim.commit import SimCommit
    from ferrymq.sim.oracle import AmqpOracle

FRAME_MAX = 4096  # the smallest AMQP allows: bodies cross frames often
SERVER_PROPERTIES = server_properties(platform="FerryMQ simulation")


def message_id(msg: Message) -> str:
    return bytes(msg.body).split(b"|", 1)[0].decode()


class NodeConnection:
    """One client connection on the node: the codec's handler (ferrymq.protocols.amqp.handler)."""

    def __init__(self, node: AmqpNode, cid: str, to_client: Pipe) -> None:
        self.node = node
        self.cid = cid
        self.out = to_client
        self.codec = AMQPServerConnection(self, SERVER_PROPERTIES, frame_max=FRAME_MAX, heartbeat=0)
        self.channels: dict[int, Channel] = {}
        self.vhost: VHost | None = None
        self.username = ""
        self.consumer_queue: dict[tuple[int, str], str] = {}  # (channel, consumer tag) -> queue
        self.tags: dict[tuple[int, int], str] = {}  # (channel, delivery tag) -> message id, unsettled
        self.emitted_flags: dict[tuple[int, int], bool] = {}  # what the core said, for the codec check
        self.dead = False
        self.client_closed = False

    # --- codec handler: connection and channels ---------------------------------------------------

    def authenticate(self, username: str, password: str, mechanism: str) -> None:
        self.node.broker.authenticate(username, password, loopback=True)
        self.username = username

    def open_vhost(self, vhost: str) -> None:
        self.vhost = self.node.broker.open_vhost(vhost, self.username)

    def on_connection_closed(self) -> None:
        self.client_closed = True
        self.teardown()

    def teardown(self) -> None:
        for number in list(self.channels):
            self.on_channel_closed(number)
        self.node.broker.connection_closed(self)

    def on_channel_open(self, channel: int) -> None:
        assert self.vhost is not None
        self.channels[channel] = self.node.broker.open_channel(self.vhost, channel, self, self.username)

    def on_channel_closed(self, channel: int) -> None:
        ch = self.channels.pop(channel, None)
        if ch is None:
            return
        for eff in ch.outbox:  # delivered by the core, never drained: the close requeues them too
            if eff[0] == DELIVER:
                queue = self.consumer_queue.get((channel, eff[1]), "?")
                self._emitted(channel, eff[2], eff[3], queue, eff[6])
        gone = [mid for (number, _), mid in self.tags.items() if number == channel]
        self.tags = {k: v for k, v in self.tags.items() if k[0] != channel}
        self.node.oracle.processed(gone, settled=False)  # the close requeues every unacked delivery
        self.node.broker.close_channel(ch)

    def on_flow(self, channel: int, active: bool) -> None:
        self.channels[channel].set_deliverable(active)

    # --- codec handler: hot path --------------------------------------------------------------------

    def on_publish(self, channel: int, exchange: str, routing_key: str, mandatory: bool,
                   message: Message) -> None:
        self.channels[channel].publish(exchange, routing_key, mandatory, message)

    def _settling(self, channel: int, tag: int, multiple: bool) -> list[str]:
        """The message ids a settle covers, from the node's own record of what it delivered."""
        keys = [k for k in self.tags
                if k[0] == channel and (k[1] == tag or (multiple and (not tag or k[1] <= tag)))]
        return [self.tags.pop(k) for k in sorted(keys)]

    def on_ack(self, channel: int, delivery_tag: int, multiple: bool) -> None:
        ids = self._settling(channel, delivery_tag, multiple)
        self.channels[channel].ack(delivery_tag, multiple)
        self.node.oracle.processed(ids, settled=True)

    def on_nack(self, channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> None:
        ids = self._settling(channel, delivery_tag, multiple)
        self.channels[channel].nack(delivery_tag, multiple, requeue)
        self.node.oracle.processed(ids, settled=not requeue)

    def on_reject(self, channel: int, delivery_tag: int, requeue: bool) -> None:
        self.on_nack(channel, delivery_tag, False, requeue)

    def on_method(self, channel: int, method: Frame) -> None:
        ch = self.channels[channel]
        self.drain(ch)  # effects queued before this method go out before its reply
        handler = METHODS.get(type(method))
        if handler is None:
            raise NotImplemented_(f"method {method.name} not implemented in the simulator")
        reply = handler(self, ch, method)
        if reply is not None:
            self.codec.send_method(channel, reply)

    # --- effects -> frames ----------------------------------------------------------------------------

    def drain(self, ch: Channel) -> None:
        if not ch.outbox:
            return
        effects, ch.outbox = ch.outbox, []
        hold = self.node.commit.must_hold()
        pending_ack = count = 0
        for eff in effects:
            if eff[0] == CONFIRM and eff[2]:
                pending_ack, count = eff[1], count + 1
                continue
            if pending_ack:
                self._confirm(hold, ch, pending_ack, count > 1, True)
                pending_ack = count = 0
            if eff[0] == DELIVER:
                self._deliver(ch, eff)
            elif eff[0] == CONFIRM:
                self._confirm(hold, ch, eff[1], False, False)
            else:
                self._rare_effect(ch, eff)
        if pending_ack:
            self._confirm(hold, ch, pending_ack, count > 1, True)

    def _deliver(self, ch: Channel, eff: tuple[Any, ...]) -> None:
        _, ctag, tag, redelivered, exchange, routing_key, msg = eff
        queue = self.consumer_queue.get((ch.number, ctag), "?")
        self._emitted(ch.number, tag, redelivered, queue, msg)
        self.codec.send_deliver(ch.number, ctag, tag, redelivered, exchange, routing_key, msg)

    def _emitted(self, number: int, tag: int, redelivered: bool, queue: str, msg: Message) -> None:
        mid = message_id(msg)
        self.tags[(number, tag)] = mid
        self.emitted_flags[(number, tag)] = redelivered
        self.node.oracle.emitted(mid, redelivered, queue, self.node.log_key(queue), self.node.commit.turn)

    def _confirm(self, hold: bool, ch: Channel, tag: int, multiple: bool, ack: bool) -> None:
        send = self.codec.send_confirm
        if not hold:
            send(ch.number, tag, multiple, ack)
            return
        def alive() -> bool:
            return self.channels.get(ch.number) is ch and not self.codec.closed
        self.node.commit.hold(alive, lambda stored: send(ch.number, tag, multiple, ack and stored))

    def _rare_effect(self, ch: Channel, eff: tuple[Any, ...]) -> None:
        if eff[0] == RETURN:
            self.codec.send_return(ch.number, *eff[1:])
        elif eff[0] == CANCEL:
            self.codec.send_method(ch.number, c.Basic.Cancel(eff[1]))
        elif eff[0] == CLOSE:
            self.codec.close_channel(ch.number, eff[1], eff[2], 0, 0)

    def write_out(self) -> None:
        if self.codec.outbox:
            self.out.writelines(self.codec.outbox)
            self.codec.outbox.clear()


# --- the rare methods the simulated clients send (the sim's copy of server/amqp_methods.py) -------

Method = Callable[[NodeConnection, Channel, Any], Frame | None]


def _queue_declare(conn: NodeConnection, ch: Channel, m: c.Queue.Declare) -> Frame:
    q = ch.vhost.declare_queue(m.queue, connection=conn, passive=m.passive, durable=m.durable,
                               exclusive=m.exclusive, auto_delete=m.auto_delete, arguments=m.arguments or {})
    return c.Queue.DeclareOk(q.name, q.message_count, len(q.consumers))


def _exchange_declare(conn: NodeConnection, ch: Channel, m: c.Exchange.Declare) -> Frame:
    ch.vhost.declare_exchange(m.exchange, m.exchange_type, passive=m.passive, durable=m.durable,
                              auto_delete=m.auto_delete, internal=m.internal, arguments=m.arguments or {})
    return c.Exchange.DeclareOk()


def _queue_bind(conn: NodeConnection, ch: Channel, m: c.Queue.Bind) -> Frame:
    ch.vhost.bind(m.queue, m.exchange, m.routing_key, m.arguments, to_exchange=False, connection=conn)
    return c.Queue.BindOk()


def _basic_qos(conn: NodeConnection, ch: Channel, m: c.Basic.Qos) -> Frame:
    ch.qos(m.prefetch_count, m.global_)
    return c.Basic.QosOk()


def _basic_consume(conn: NodeConnection, ch: Channel, m: c.Basic.Consume) -> Frame:
    conn.consumer_queue[(ch.number, m.consumer_tag)] = m.queue  # before: consume may deliver at once
    tag = ch.consume(m.queue, m.consumer_tag, no_ack=m.no_ack, exclusive=m.exclusive, arguments=m.arguments)
    return c.Basic.ConsumeOk(tag)


def _basic_cancel(conn: NodeConnection, ch: Channel, m: c.Basic.Cancel) -> Frame:
    ch.cancel(m.consumer_tag or "")
    return c.Basic.CancelOk(m.consumer_tag)


def _basic_get(conn: NodeConnection, ch: Channel, m: c.Basic.Get) -> Frame | None:
    got = ch.get(m.queue, m.no_ack)
    if got is None:
        return c.Basic.GetEmpty()
    tag, redelivered, msg, remaining = got
    conn._emitted(ch.number, tag, redelivered, m.queue, msg)
    conn.codec.send_get_ok(ch.number, tag, redelivered, msg.exchange, msg.routing_key, remaining, msg)
    return None


def _confirm_select(conn: NodeConnection, ch: Channel, m: c.Confirm.Select) -> Frame:
    ch.confirm_select()
    return c.Confirm.SelectOk()


METHODS: dict[type, Method] = {
    c.Queue.Declare: _queue_declare, c.Exchange.Declare: _exchange_declare, c.Queue.Bind: _queue_bind,
    c.Basic.Qos: _basic_qos, c.Basic.Consume: _basic_consume, c.Basic.Cancel: _basic_cancel,
    c.Basic.Get: _basic_get, c.Confirm.Select: _confirm_select,
}


class AmqpNode:
    """The AMQP front end of one node incarnation: its connections over the node's broker."""

    def __init__(self, broker: Broker, commit: SimCommit, oracle: AmqpOracle,
                 log_key: Callable[[str], int]) -> None:
        self.broker = broker
        self.commit = commit
        self.oracle = oracle
        self.log_key = log_key
        self.connections: dict[str, NodeConnection] = {}

    def accept(self, cid: str, to_client: Pipe) -> NodeConnection:
        conn = self.connections[cid] = NodeConnection(self, cid, to_client)
        return conn

    def receive(self, cid: str, data: bytes) -> None:
        conn = self.connections.get(cid)
        if conn is not None and not conn.dead:
            conn.codec.receive_data(data)

    def drain_all(self) -> None:
        """The first half of a turn's end: every channel with effects is drained."""
        broker = self.broker
        while broker.dirty:
            dirty, broker.dirty = broker.dirty, []
            for ch in dirty:
                ch.dirty = False
                if isinstance(ch.connection, NodeConnection):
                    ch.connection.drain(ch)

    def write_all(self) -> list[str]:
        """The second half: output written; connections the codec closed are torn down."""
        closed = []
        for cid, conn in sorted(self.connections.items()):
            conn.write_out()
            if conn.codec.closed and not conn.dead:
                conn.dead = True
                if not conn.client_closed:  # the client's own close was torn down already
                    conn.teardown()
                    closed.append(cid)
        return closed
