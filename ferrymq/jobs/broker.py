"""The job system's AMQP side: queue topology, delayed delivery, confirmed publishing.

Every job queue ``q`` has a dead-letter queue ``q.dlq`` (the broker dead-letters rejects there
too). Delays are held by the broker, never in worker memory: on FerryMQ by its
``x-delayed-message`` exchange (durable, any delay, survives a restart); on RabbitMQ, which ships
no such exchange by default, by one TTL queue per delay bucket that dead-letters back into ``q``
(delays rounded *up* to two significant digits, so a job never starts before its time and
there are at most ~180 buckets per queue per decade of delay).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from ferrymq.client.connection import BrokerClosed, Client
from ferrymq.client.deliveries import Confirm, InboundReader
from ferrymq.clock import Clock
from ferrymq.jobs import tenants
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.options import MAX_PRIORITY
from ferrymq.protocols.amqp import client as codec

DELAYED_EXCHANGE = "ferrymq.jobs.delayed"
DELAY_QUEUE_SPARE_MS = 60_000  # a delay queue outlives its longest message by this much
RECV_BYTES = 256 * 1024


class PublishError(RuntimeError):
    """The broker refused (nacked) a job, or could not be reached to take it."""


def is_ferrymq(client: Client) -> bool:
    """FerryMQ may call itself RabbitMQ in ``product`` (for clients that check); its platform
    and information properties still name it."""
    props = client.server_properties
    return any("FerryMQ" in _text(props.get(name)) for name in ("product", "platform", "information"))


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def dlq_name(queue: str) -> str:
    return f"{queue}.dlq"


def delay_bucket(delay_ms: int) -> int:
    """``delay_ms`` rounded up to two significant digits (>= 1 ms)."""
    if delay_ms < 100:
        return max(1, delay_ms)
    step = 10 ** (int(math.log10(delay_ms)) - 1)
    return -(-delay_ms // step) * step


@dataclass(frozen=True)
class QueueShape:
    """How an app's job queues are declared: which take priorities, and the per-delivery lease
    (FerryMQ's ``x-delivery-lease``; ignored on RabbitMQ, which has no such thing)."""

    priorities: frozenset[str] | bool = frozenset()
    lease_ms: int | None = None
    fair: frozenset[str] = frozenset()  # queues whose jobs with a tenant go to q.t.<tenant>


class Topology:
    """The queues, dead-letter queues and delay routes one connection has declared."""

    def __init__(self, client: Client, clock: Clock, shape: QueueShape) -> None:
        self.client = client
        self.clock = clock
        self.ferrymq = is_ferrymq(client)
        self.shape = shape
        self._priority = shape.priorities
        self._queues: set[str] = set()
        self._delay_queues: dict[str, int] = {}  # name -> monotonic ms it was last declared
        self._delayed_exchange = False
        self._announcing: set[str] = set()  # fair queues whose registry this connection declared
        self.announced = 0  # announcements published and not yet counted by the publisher
        self._announce_frames: list[bytes] = []

    def queue(self, name: str) -> None:
        """Declare job queue ``name`` and its dead-letter queue, once per connection."""
        if name in self._queues:
            return
        self.client.declare_queue(dlq_name(name), durable=True)
        self._declare(name, name)

    def _declare(self, name: str, queue: str) -> None:
        """``name`` (job queue ``queue`` or one of its tenant sub-queues), dead-lettering to
        ``queue``'s DLQ, with ``queue``'s priorities and lease."""
        args: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq_name(queue)}
        if self._priority is True or (self._priority and queue in self._priority):
            args["x-max-priority"] = MAX_PRIORITY
        if self.ferrymq and self.shape.lease_ms:
            args["x-delivery-lease"] = self.shape.lease_ms
        self.client.declare_queue(name, durable=True, arguments=args)
        if self.ferrymq:
            self._declare_delayed_exchange()
            self.client.bind(name, DELAYED_EXCHANGE, name)
        self._queues.add(name)

    def tenant_queue(self, queue: str, name: str, announce: bool = True) -> None:
        """Declare tenant sub-queue ``name`` of fair queue ``queue``, once per connection; a
        sender also announces it (the publish goes out with the next frames: ``take_announcements``)."""
        if name in self._queues:
            return
        self.queue(queue)
        self._declare(name, queue)
        if announce:
            if queue not in self._announcing:
                tenants.declare_announcements(self.client, queue)
                self._announcing.add(queue)
            self._announce_frames.append(
                tenants.announce_frame(queue, name, tenants.announce_key(queue), self.client.frame_max))

    def take_announcements(self) -> bytes:
        frames, self._announce_frames = self._announce_frames, []
        self.announced += len(frames)
        return b"".join(frames)

    def destination(self, message: JobMessage) -> str:
        """The queue a job goes to: its tenant's sub-queue on a fair queue, else its queue."""
        if message.tenant is None or message.queue not in self.shape.fair:
            return message.queue
        return tenants.tenant_queue(message.queue, message.tenant)

    def _declare_delayed_exchange(self) -> None:
        if not self._delayed_exchange:
            self.client.declare_exchange(DELAYED_EXCHANGE, "x-delayed-message", durable=True,
                                         arguments={"x-delayed-type": "direct"})
            self._delayed_exchange = True

    def ready(self, queue: str, delay_ms: int) -> bool:
        """Whether routing to ``queue`` after ``delay_ms`` needs no declare (which would read the
        socket and must not race confirms)."""
        if queue not in self._queues:
            return False
        if delay_ms <= 0 or self.ferrymq:
            return True
        declared = self._delay_queues.get(f"{queue}.delay.{delay_bucket(delay_ms)}")
        return declared is not None and self.clock.monotonic_ms() - declared <= DELAY_QUEUE_SPARE_MS // 2

    def route(self, queue: str, delay_ms: int) -> tuple[str, str, dict[str, Any] | None]:
        """(exchange, routing key, headers) that deliver to ``queue`` after ``delay_ms``."""
        self.queue(queue)
        if delay_ms <= 0:
            return "", queue, None
        if self.ferrymq:
            return DELAYED_EXCHANGE, queue, {"x-delay": delay_ms}
        bucket = delay_bucket(delay_ms)
        name = f"{queue}.delay.{bucket}"
        now = self.clock.monotonic_ms()
        expires = bucket + DELAY_QUEUE_SPARE_MS
        declared = self._delay_queues.get(name)
        # x-expires counts from the last declare, not the last publish: redeclare well before.
        if declared is None or now - declared > DELAY_QUEUE_SPARE_MS // 2:
            self.client.declare_queue(name, durable=True, arguments={
                "x-message-ttl": bucket, "x-expires": expires,
                "x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue})
            self._delay_queues[name] = now
        return "", name, None

    def frames(self, message: JobMessage, delay_ms: int, dead: bool = False,
               headers: dict[str, Any] | None = None) -> bytes:
        """The publish of ``message`` to its queue after ``delay_ms``, or now to its DLQ."""
        if dead:
            self.queue(message.queue)
            exchange, routing_key = "", dlq_name(message.queue)
        else:
            queue = self.destination(message)
            if queue is not message.queue:
                self.tenant_queue(message.queue, queue)
            exchange, routing_key, route_headers = self.route(queue, delay_ms)
            if route_headers:
                headers = {**(headers or {}), **route_headers}
        publish = codec.encode_publish(1, exchange, routing_key, message.body(), message.properties(headers),
                                       self.client.frame_max)
        return self.take_announcements() + publish if self._announce_frames else publish


class ConfirmWaiter:
    """Counts publisher confirms on a channel whose publishes are numbered 1, 2, ..."""

    def __init__(self) -> None:
        self.sent = 0
        self.upto = 0
        self.nacked: set[int] = set()  # nacks are rare (a broker refusing): kept per tag
        self._singles: set[int] = set()

    def settle(self, confirms: list[Confirm]) -> None:
        for tag, multiple, nack in confirms:
            if multiple:
                if nack:
                    self.nacked.update(t for t in range(self.upto + 1, tag + 1) if t not in self._singles)
                self._singles = {t for t in self._singles if t > tag}
                self.upto = max(self.upto, tag)
            elif tag > self.upto:
                self._singles.add(tag)
                if nack:
                    self.nacked.add(tag)
            while self.upto + 1 in self._singles:
                self.upto += 1
                self._singles.discard(self.upto)

    def refused(self, first: int, last: int) -> int:
        """How many of tags first..last the broker nacked."""
        if not self.nacked:
            return 0
        return sum(1 for t in range(first, last + 1) if t in self.nacked)


class Publisher:
    """One confirm-mode connection shared by a process's threads: ``publish`` returns when the
    broker has taken (and, for durable queues, fsynced) every message it was given.

    Threads pipeline: each sends under a short lock, then waits for its own confirms while
    others send, so a hundred threads calling ``send()`` share the broker's group commits instead
    of queueing behind one round trip each. Whichever waiter finds nobody reading the socket
    reads it for all of them (leader/follower on one condition variable)."""

    def __init__(self, url: str, clock: Clock, shape: QueueShape, product: str = "ferrymq.jobs") -> None:
        self.url = url
        self.clock = clock
        self.shape = shape
        self.product = product
        self._lock = threading.Lock()  # sending, connecting, declaring
        self._cv = threading.Condition(threading.Lock())  # confirm state and the reader role
        self._reading = False
        self._client: Client | None = None
        self._generation = 0
        self._broken: dict[int, BaseException] = {}  # connection generation -> why it ended
        self.topology: Topology | None = None

    def _connect(self) -> tuple[Client, Topology]:
        if self._client is None or self.topology is None:
            client = Client(self.url, product=self.product).open(heartbeat=0)
            client.confirm_select()
            with self._cv:
                self._generation += 1
                self._confirms = ConfirmWaiter()
                self._reader = InboundReader()
                if client.buf:
                    self._reader.feed(bytes(client.buf), [], [])
                    client.buf.clear()
            self._client, self.topology = client, Topology(client, self.clock, self.shape)
        return self._client, self.topology

    def publish(self, items: list[tuple[JobMessage, int]], dead: bool = False,
                headers: dict[str, Any] | None = None) -> None:
        """Publish (message, delay ms) pairs and wait for their confirms. A lost connection is
        reopened and the batch sent again once (same message ids: at-least-once)."""
        for attempt in (1, 2):
            try:
                with self._lock:
                    ticket = self._send_locked(lambda t: b"".join(
                        [t.frames(m, delay, dead, headers) for m, delay in items]), items, dead, len(items))
                self._await(*ticket)
                return
            except (OSError, BrokerClosed) as exc:
                with self._lock:
                    self.close_locked()
                if attempt == 2:
                    raise PublishError(f"could not publish to {self.url}: {exc}") from exc

    def publish_bytes(self, queue: str, properties: bytes, body: bytes) -> None:
        """A message that is not a job (one a worker could not decode) to ``queue``'s DLQ."""
        queue = tenants.parent_queue(queue, self.shape.fair)  # a tenant sub-queue dead-letters to q.dlq

        def frames(topology: Topology) -> bytes:
            topology.queue(queue)
            return codec.encode_publish(1, "", dlq_name(queue), body, properties, topology.client.frame_max)

        with self._lock:
            self._quiesce()
            ticket = self._send_locked(frames, [], True, 1)
        self._await(*ticket)

    def _send_locked(self, build: Any, items: list[tuple[JobMessage, int]], dead: bool,
                     count: int) -> tuple[int, int, int]:
        """Send under the lock; returns (generation, first tag, last tag) to wait for."""
        client, topology = self._connect()
        if not all(topology.ready(m.queue if dead else topology.destination(m), 0 if dead else delay)
                   for m, delay in items):
            self._quiesce()  # a declare reads the socket: no confirm may be in flight then
        data = build(topology)
        count += topology.announced  # announcements of new tenant sub-queues are confirmed too
        topology.announced = 0
        with self._cv:
            if client.buf:  # bytes a declare's reply left behind belong to the confirm reader
                self._reader.feed(bytes(client.buf), [], [])
                client.buf.clear()
            first = self._confirms.sent + 1
            self._confirms.sent += count
            generation = self._generation
        client.sock.sendall(data)
        return generation, first, first + count - 1

    def _quiesce(self) -> None:
        """Wait (holding the send lock) until every publish sent so far is confirmed."""
        if self._client is not None:
            with self._cv:
                generation, last = self._generation, self._confirms.sent
            self._await(generation, 1, last)

    def _await(self, generation: int, first: int, last: int) -> None:
        with self._cv:
            while True:
                if generation in self._broken:
                    raise BrokerClosed(str(self._broken[generation]))
                if generation != self._generation:
                    raise BrokerClosed("the connection was replaced")
                if self._confirms.upto >= last:
                    break
                if self._reading:
                    self._cv.wait()
                else:
                    self._read_for_all(generation)
            refused = self._confirms.refused(first, last)
        if refused:
            raise PublishError(f"the broker refused {refused} of {last - first + 1} jobs")

    def _read_for_all(self, generation: int) -> None:
        """One recv for every waiter (called holding the condition; released around the recv)."""
        client = self._client
        assert client is not None
        self._reading = True
        self._cv.release()
        try:
            data = client.sock.recv(RECV_BYTES)
            error: BaseException | None = None if data else BrokerClosed("broker closed the connection")
        except OSError as exc:
            data, error = b"", exc
        finally:
            self._cv.acquire()
            self._reading = False
            self._cv.notify_all()
        if error is not None:
            self._broken[generation] = error
            raise BrokerClosed(str(error))
        confirms: list[Confirm] = []
        try:
            self._reader.feed(data, [], confirms)
        except BrokerClosed as exc:
            self._broken[generation] = exc
            raise
        self._confirms.settle(confirms)

    def close_locked(self) -> None:
        if self._client is not None:
            self._client.close(timeout=1.0)
        self._client = self.topology = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()

    def declare(self, queues: list[str]) -> None:
        """Declare job queues up front (a worker does, before consuming)."""
        with self._lock:
            _, topology = self._connect()
            self._quiesce()
            for name in queues:
                topology.queue(name)
