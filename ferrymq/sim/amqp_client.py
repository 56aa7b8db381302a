"""A simulated AMQP client: the project's client codec (ferrymq/protocols/amqp/client.py) over a
``Pipe``, driven one seeded operation at a time, reporting what it sees to the oracle.

It is a well-behaved client (it settles only tags it holds, declares before it uses), so any
channel.close or connection.close from the node is itself a violation.
"""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING

from pamqp import commands as c
from pamqp.base import Frame
from pamqp.body import ContentBody
from pamqp.header import ContentHeader

from ferrymq.core.properties import Properties
from ferrymq.protocols.amqp.client import (
    FrameReader,
    encode_ack,
    encode_method,
    encode_publish,
    protocol_header,
)
from ferrymq.protocols.amqp.properties import encode_properties
from ferrymq.sim.amqp_node import FRAME_MAX
from ferrymq.sim.network import Pipe
from ferrymq.sim.oracle import AmqpOracle, Violation

if TYPE_CHECKING:
    from collections.abc import Callable

PERSISTENT = encode_properties(Properties(delivery_mode=2))
TRANSIENT = encode_properties(Properties(delivery_mode=1))
CH = 1

# (queue, exchange, routing key, durable queue): where publishes go
TARGETS = (("q0", "", "q0", True), ("q1", "sim.direct", "k1", True), ("t0", "", "t0", False))


class SimClient:
    def __init__(self, name: str, oracle: AmqpOracle, confirms: bool, trace: Callable[[str], None]) -> None:
        self.name = name
        self.oracle = oracle
        self.confirms = confirms
        self.trace = trace
        self.generation = 0  # connections made so far: tags and ids stay unique across reconnects
        self.pubseq = 0
        self.up = False
        self.ready = False
        self.to_node: Pipe | None = None
        self.from_node: Pipe | None = None
        self.drain_mode = False  # at the end: ack everything, consume everything
        self._reset()

    def _reset(self) -> None:
        self.reader = FrameReader()
        self.expect: deque[str] = deque()
        self.unconfirmed: dict[int, str] = {}  # publish seq -> message id
        self.confirm_seq = 0
        self.held: dict[int, str] = {}  # delivery tag -> message id, not yet settled by us
        self.consumers: dict[str, str] = {}  # consumer tag -> queue (consume-ok received or pending)
        self._content: list[object] | None = None  # [kind, tag, redelivered, consumer, size, parts]
        self.ready = False

    @property
    def cid(self) -> str:
        return f"{self.name}#{self.generation}"

    # --- connection ------------------------------------------------------------------------------

    def connect(self, to_node: Pipe, from_node: Pipe) -> None:
        self.generation += 1
        self._reset()
        self.to_node, self.from_node, self.up = to_node, from_node, True
        to_node.write(protocol_header())

    def lost(self) -> None:
        """The node lost power: unconfirmed publishes stay unknown, held deliveries are void."""
        self.up = False
        self._reset()

    def _send(self, method: Frame) -> None:
        assert self.to_node is not None
        self.to_node.write(encode_method(0 if method.name.startswith("Connection") else CH, method))

    def _call(self, method: Frame, reply: str) -> None:
        self._send(method)
        self.expect.append(reply)

    def _setup(self) -> None:
        self._call(c.Exchange.Declare(exchange="sim.direct", exchange_type="direct", durable=True),
                   "Exchange.DeclareOk")
        for queue, _, _, durable in TARGETS:
            self._call(c.Queue.Declare(queue=queue, durable=durable), "Queue.DeclareOk")
        self._call(c.Queue.Bind(queue="q1", exchange="sim.direct", routing_key="k1"), "Queue.BindOk")
        if self.confirms:
            self._call(c.Confirm.Select(), "Confirm.SelectOk")
        self.ready = True

    # --- input -----------------------------------------------------------------------------------

    def receive(self, data: bytes, core_flag: Callable[[str, int], bool | None]) -> None:
        for _channel, frame in self.reader.feed(data):
            if isinstance(frame, (ContentHeader, ContentBody)):
                self._on_content(frame, core_flag)
            elif isinstance(frame, Frame):
                self._on_method(frame)

    def _on_method(self, m: Frame) -> None:
        name = m.name
        if isinstance(m, c.Connection.Start):
            self._send(c.Connection.StartOk(client_properties={"capabilities": {"publisher_confirms": True}},
                                            mechanism="PLAIN", response="\x00guest\x00guest"))
        elif isinstance(m, c.Connection.Tune):
            self._send(c.Connection.TuneOk(m.channel_max, FRAME_MAX, 0))
            self._send(c.Connection.Open(virtual_host="/"))
            self._call(c.Channel.Open(), "Channel.OpenOk")
        elif isinstance(m, c.Connection.OpenOk):
            pass
        elif isinstance(m, c.Connection.CloseOk):
            self._expected(name)
            self.lost()
        elif isinstance(m, (c.Basic.Deliver, c.Basic.GetOk)):
            consumer = m.consumer_tag if isinstance(m, c.Basic.Deliver) else f"{self.cid}/get"
            if isinstance(m, c.Basic.GetOk):
                self._expected("Basic.GetOk")
            self._content = [m.delivery_tag, m.redelivered, consumer, -1, []]
        elif isinstance(m, (c.Basic.Ack, c.Basic.Nack)) and self.confirms:
            self._on_confirm(m.delivery_tag, m.multiple, isinstance(m, c.Basic.Ack))
        elif isinstance(m, (c.Channel.Close, c.Connection.Close)):
            raise Violation(f"{self.cid}: the node closed on a well-behaved client: "
                            f"{m.reply_code} {m.reply_text}")
        elif isinstance(m, c.Basic.Cancel):
            raise Violation(f"{self.cid}: the node cancelled consumer {m.consumer_tag} unasked")
        else:
            self._expected(name)
            if isinstance(m, c.Channel.OpenOk):
                self._setup()
            elif isinstance(m, c.Basic.CancelOk):
                self.consumers.pop(m.consumer_tag or "", None)

    def _expected(self, name: str) -> None:
        want = self.expect.popleft() if self.expect else "nothing"
        if want != name and not (want == "Basic.GetOk" and name == "Basic.GetEmpty"):
            raise Violation(f"{self.cid}: expected {want}, got {name}")

    def _on_content(self, frame: object, core_flag: Callable[[str, int], bool | None]) -> None:
        st = self._content
        if st is None:
            raise Violation(f"{self.cid}: content frame without a deliver or get-ok")
        if isinstance(frame, ContentHeader):
            st[3] = frame.body_size
        else:
            st[4].append(frame.value)  # type: ignore[attr-defined, union-attr]
        parts: list[bytes] = st[4]  # type: ignore[assignment]
        if st[3] >= 0 and sum(len(p) for p in parts) >= st[3]:  # type: ignore[operator]
            self._content = None
            tag, redelivered, consumer = st[0], st[1], st[2]
            body = b"".join(parts)
            mid = body.split(b"|", 1)[0].decode()
            self.oracle.received(str(consumer), mid, bool(redelivered), core_flag(self.cid, int(tag)))  # type: ignore[call-overload]
            self.held[int(tag)] = mid  # type: ignore[call-overload]
            self.trace(f"{self.cid} got {mid} tag={tag} redelivered={redelivered} via {consumer}")

    def _on_confirm(self, tag: int, multiple: bool, ack: bool) -> None:
        seqs = [s for s in self.unconfirmed if s == tag or (multiple and s <= tag)]
        if not seqs:
            raise Violation(f"{self.cid}: confirm for unknown publish seq {tag} (multiple={multiple})")
        for s in sorted(seqs):
            mid = self.unconfirmed.pop(s)
            if ack:
                self.oracle.confirmed(mid)
        self.trace(f"{self.cid} {'ack' if ack else 'nack'} confirm seq={tag} multiple={multiple}")

    # --- operations (each one a step) -------------------------------------------------------------

    def publish(self, rng: random.Random) -> str:
        queue, exchange, key, durable = rng.choice(TARGETS)
        persistent = rng.random() < 0.8
        self.pubseq += 1
        mid = f"{self.name}.{self.pubseq}"
        pad = b"x" * rng.choice((0, 10, 200, FRAME_MAX, 3 * FRAME_MAX + 5))
        assert self.to_node is not None
        self.to_node.write(encode_publish(CH, exchange, key, mid.encode() + b"|" + pad,
                                          PERSISTENT if persistent else TRANSIENT, FRAME_MAX))
        self.oracle.published(mid, queue, persistent, durable, self.name, self.pubseq)
        if self.confirms:
            self.confirm_seq += 1
            self.unconfirmed[self.confirm_seq] = mid
        return f"publish {mid} -> {queue} persistent={persistent} {len(pad)}B"

    def consume(self, rng: random.Random) -> str | None:
        if len(self.consumers) >= 2:
            return None
        queue = rng.choice(TARGETS)[0]
        tag = f"{self.cid}/c{rng.randrange(10**6)}"
        prefetch = 0 if self.drain_mode else rng.randint(1, 8)
        self._call(c.Basic.Qos(prefetch_count=prefetch), "Basic.QosOk")
        self._call(c.Basic.Consume(queue=queue, consumer_tag=tag), "Basic.ConsumeOk")
        self.consumers[tag] = queue
        return f"consume {queue} as {tag} prefetch={prefetch}"

    def consume_all(self) -> None:
        """For the drain: one unlimited consumer on every queue not yet consumed."""
        have = set(self.consumers.values())
        self._call(c.Basic.Qos(prefetch_count=0), "Basic.QosOk")
        for queue, *_ in TARGETS:
            if queue not in have:
                tag = f"{self.cid}/drain-{queue}"
                self._call(c.Basic.Consume(queue=queue, consumer_tag=tag), "Basic.ConsumeOk")
                self.consumers[tag] = queue

    def cancel(self, rng: random.Random) -> str | None:
        if not self.consumers or self.drain_mode:
            return None
        tag = rng.choice(sorted(self.consumers))
        self._call(c.Basic.Cancel(consumer_tag=tag), "Basic.CancelOk")
        return f"cancel {tag}"

    def close(self, rng: random.Random) -> str | None:
        """A clean goodbye: the node requeues what this client still holds."""
        if self.drain_mode:
            return None
        self._call(c.Connection.Close(reply_code=200, reply_text="bye"), "Connection.CloseOk")
        self.ready = False
        return "close"

    def get(self, rng: random.Random) -> str:
        queue = rng.choice(TARGETS)[0]
        self._call(c.Basic.Get(queue=queue), "Basic.GetOk")
        return f"get {queue}"

    def settle(self, rng: random.Random, how: str) -> str | None:
        """ack / nack / reject one held delivery (sometimes every one up to it, for ack and nack)."""
        if not self.held:
            return None
        tag = rng.choice(sorted(self.held))
        multiple = how != "reject" and rng.random() < 0.25
        requeue = how != "ack" and rng.random() < 0.6
        tags = [t for t in self.held if t == tag or (multiple and t <= tag)]
        mids = [self.held.pop(t) for t in sorted(tags)]
        assert self.to_node is not None
        if how == "ack":
            self.to_node.write(encode_ack(CH, tag, multiple))
        elif how == "nack":
            self._send(c.Basic.Nack(delivery_tag=tag, multiple=multiple, requeue=requeue))
        else:
            self._send(c.Basic.Reject(delivery_tag=tag, requeue=requeue))
        if how == "ack" or not requeue:
            for mid in mids:
                self.oracle.client_settled(mid)
        return f"{how} tag={tag} multiple={multiple} requeue={requeue if how != 'ack' else '-'} {mids}"

    def ack_all(self) -> str | None:
        if not self.held:
            return None
        tag = max(self.held)
        mids = list(self.held.values())
        self.held.clear()
        assert self.to_node is not None
        self.to_node.write(encode_ack(CH, tag, True))
        for mid in mids:
            self.oracle.client_settled(mid)
        return f"ack all up to tag={tag} ({len(mids)})"
