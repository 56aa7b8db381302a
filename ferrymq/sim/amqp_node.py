"""The simulated broker node's AMQP side: the real codec (AMQPServerConnection), the real core, and
the server's own glue between them without asyncio: the rare-method table
(ferrymq.server.amqp.methods) and the effects-to-frames drain (ferrymq.server.amqp.effects: runs of
publisher acks coalesced into one multiple ack, confirms held while a commit is pending). Neither
module imports asyncio (an import contract keeps it so). What stays here is the codec handler's
small mapping of the hot-path events to the core's Channel calls, as AMQPConnection has it, and
output written once per turn.

The node also tells the oracle what the core did (each delivery it emitted, each settle it processed),
which the invariants need and a client cannot see: the codec is the real one with its two delivery
encoders watched (``WatchedCodec``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ferrymq.core.channel import DELIVER, Channel
from ferrymq.core.message import Message
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.server_properties import server_properties
from ferrymq.server.amqp import effects, methods
from ferrymq.sim.network import Pipe

if TYPE_CHECKING:
    from pamqp.base import Frame

    from ferrymq.core.broker import Broker
    from ferrymq.core.vhost import VHost
    from ferrymq.sim.commit import SimCommit
    from ferrymq.sim.oracle import AmqpOracle

FRAME_MAX = 4096  # the smallest AMQP allows: bodies cross frames often
SERVER_PROPERTIES = server_properties(platform="FerryMQ simulation")


def message_id(msg: Message) -> str:
    return bytes(msg.body).split(b"|", 1)[0].decode()


class WatchedCodec(AMQPServerConnection):
    """The real codec; every delivery it encodes (basic.deliver, basic.get-ok) is told to the node
    first, with what the core said about it."""

    def __init__(self, conn: NodeConnection) -> None:
        self.watcher = conn
        super().__init__(conn, SERVER_PROPERTIES, frame_max=FRAME_MAX, heartbeat=0)

    def send_deliver(self, channel: int, consumer_tag: str, delivery_tag: int, redelivered: bool,
                     exchange: str, routing_key: str, message: Message) -> None:
        self.watcher.emitted(channel, delivery_tag, redelivered, message)
        super().send_deliver(channel, consumer_tag, delivery_tag, redelivered, exchange, routing_key, message)

    def send_get_ok(self, channel: int, delivery_tag: int, redelivered: bool, exchange: str,
                    routing_key: str, message_count: int, message: Message) -> None:
        self.watcher.emitted(channel, delivery_tag, redelivered, message)
        super().send_get_ok(channel, delivery_tag, redelivered, exchange, routing_key, message_count, message)


class NodeConnection:
    """One client connection on the node: the codec's handler (ferrymq.protocols.amqp.handler), and
    the ``MethodConnection`` the server's method table and drain run on."""

    def __init__(self, node: AmqpNode, cid: str, to_client: Pipe) -> None:
        self.server = node  # the reply hold (``commit``, ``hold``), named as AMQPConnection names it
        self.node = node
        self.cid = cid
        self.out = to_client
        self.codec = WatchedCodec(self)
        self.channels: dict[int, Channel] = {}
        self.last_queue: dict[int, str] = {}
        self.vhost: VHost | None = None
        self.username = ""
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
        self.last_queue.pop(channel, None)
        if ch is None:
            return
        for eff in ch.outbox:  # delivered by the core, never drained: the close requeues them too
            if eff[0] == DELIVER:
                self.emitted(channel, eff[2], eff[3], eff[6])
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
        ids = self._settling(channel, delivery_tag, False)
        self.channels[channel].reject(delivery_tag, requeue)
        self.node.oracle.processed(ids, settled=not requeue)

    def on_method(self, channel: int, method: Frame) -> None:
        methods.dispatch(self, self.channels[channel], method)

    # --- effects -> frames ----------------------------------------------------------------------------

    def drain(self, ch: Channel) -> None:
        effects.drain(self, ch)

    def emitted(self, number: int, tag: int, redelivered: bool, msg: Message) -> None:
        """The core handed this message out (deliver or get-ok): the oracle checks and records it."""
        mid = message_id(msg)
        self.tags[(number, tag)] = mid
        self.emitted_flags[(number, tag)] = redelivered
        queue = self.node.oracle.queue_of(mid)
        self.node.oracle.emitted(mid, redelivered, queue, self.node.log_key(queue), self.node.commit.turn)

    def write_out(self) -> None:
        if self.codec.outbox:
            self.out.writelines(self.codec.outbox)
            self.codec.outbox.clear()


class AmqpNode:
    """The AMQP front end of one node incarnation: its connections over the node's broker."""

    def __init__(self, broker: Broker, commit: SimCommit, oracle: AmqpOracle,
                 log_key: Callable[[str], int]) -> None:
        self.broker = broker
        self.commit = commit
        self.oracle = oracle
        self.log_key = log_key
        self.connections: dict[str, NodeConnection] = {}

    def hold(self, conn: Any, ch: Channel, send: Callable[[bool], None]) -> None:
        """As AMQPServer.hold: a held reply goes only if its channel is still open when released."""
        def alive() -> bool:
            return conn.channels.get(ch.number) is ch and not conn.codec.closed
        self.commit.hold(alive, send)

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
