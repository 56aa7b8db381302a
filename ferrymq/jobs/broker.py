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
from typing import Any

from ferrymq.client.connection import BrokerClosed, Client
from ferrymq.client.deliveries import Confirm, Delivery, InboundReader
from ferrymq.clock import Clock
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


class Topology:
    """The queues, dead-letter queues and delay routes one connection has declared."""

    def __init__(self, client: Client, clock: Clock, priority_queues: frozenset[str] | bool) -> None:
        self.client = client
        self.clock = clock
        self.ferrymq = is_ferrymq(client)
        self._priority = priority_queues
        self._queues: set[str] = set()
        self._delay_queues: dict[str, int] = {}  # name -> monotonic ms it was last declared
        self._delayed_exchange = False

    def queue(self, name: str) -> None:
        """Declare job queue ``name`` and its dead-letter queue, once per connection."""
        if name in self._queues:
            return
        self.client.declare_queue(dlq_name(name), durable=True)
        args: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq_name(name)}
        if self._priority is True or (self._priority and name in self._priority):
            args["x-max-priority"] = MAX_PRIORITY
        self.client.declare_queue(name, durable=True, arguments=args)
        if self.ferrymq:
            self._declare_delayed_exchange()
            self.client.bind(name, DELAYED_EXCHANGE, name)
        self._queues.add(name)

    def _declare_delayed_exchange(self) -> None:
        if not self._delayed_exchange:
            self.client.declare_exchange(DELAYED_EXCHANGE, "x-delayed-message", durable=True,
                                         arguments={"x-delayed-type": "direct"})
            self._delayed_exchange = True

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
            exchange, routing_key, route_headers = self.route(message.queue, delay_ms)
            if route_headers:
                headers = {**(headers or {}), **route_headers}
        return codec.encode_publish(1, exchange, routing_key, message.body(), message.properties(headers),
                                    self.client.frame_max)


class ConfirmWaiter:
    """Counts publisher confirms on a channel whose publishes are numbered 1, 2, ..."""

    def __init__(self) -> None:
        self.sent = 0
        self.upto = 0
        self.nacked = 0
        self._singles: set[int] = set()

    def settle(self, confirms: list[Confirm]) -> None:
        for tag, multiple, nack in confirms:
            if multiple:
                newly = tag - self.upto - len([t for t in self._singles if t <= tag])
                self._singles = {t for t in self._singles if t > tag}
                self.upto = max(self.upto, tag)
                self.nacked += newly if nack else 0
            elif tag > self.upto:
                self._singles.add(tag)
                self.nacked += 1 if nack else 0
            while self.upto + 1 in self._singles:
                self.upto += 1
                self._singles.discard(self.upto)


class Publisher:
    """One confirm-mode connection shared by a process's threads: ``publish`` returns when the
    broker has taken (and, for durable queues, fsynced) every message it was given."""

    def __init__(self, url: str, clock: Clock, priority_queues: frozenset[str] | bool,
                 product: str = "ferrymq.jobs") -> None:
        self.url = url
        self.clock = clock
        self.priority_queues = priority_queues
        self.product = product
        self._lock = threading.Lock()
        self._client: Client | None = None
        self.topology: Topology | None = None

    def _connect(self) -> tuple[Client, Topology]:
        if self._client is None or self.topology is None:
            client = Client(self.url, product=self.product).open(heartbeat=0)
            client.confirm_select()
            self._client, self.topology = client, Topology(client, self.clock, self.priority_queues)
            self._confirms = ConfirmWaiter()
            self._reader = InboundReader()
        return self._client, self.topology

    def publish(self, items: list[tuple[JobMessage, int]], dead: bool = False,
                headers: dict[str, Any] | None = None) -> None:
        """Publish (message, delay ms) pairs and wait for their confirms. A lost connection is
        reopened and the batch sent again once (same message ids: at-least-once)."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    self._publish_locked(items, dead, headers)
                    return
                except (OSError, BrokerClosed) as exc:
                    self.close_locked()
                    if attempt == 2:
                        raise PublishError(f"could not publish to {self.url}: {exc}") from exc

    def publish_bytes(self, queue: str, properties: bytes, body: bytes) -> None:
        """A message that is not a job (one a worker could not decode) to ``queue``'s DLQ."""
        with self._lock:
            client, topology = self._connect()
            topology.queue(queue)
            data = codec.encode_publish(1, "", dlq_name(queue), body, properties, client.frame_max)
            self._send_and_confirm(client, data, 1)

    def _publish_locked(self, items: list[tuple[JobMessage, int]], dead: bool,
                        headers: dict[str, Any] | None) -> None:
        client, topology = self._connect()
        data = b"".join([topology.frames(m, delay, dead, headers) for m, delay in items])
        self._send_and_confirm(client, data, len(items))

    def _send_and_confirm(self, client: Client, data: bytes, count: int) -> None:
        waiter = self._confirms
        first, waiter.sent = waiter.sent, waiter.sent + count
        nacked_before = waiter.nacked
        client.sock.sendall(data)
        deliveries: list[Delivery] = []
        confirms: list[Confirm] = []
        if client.buf:
            self._reader.feed(bytes(client.buf), deliveries, confirms)
            client.buf.clear()
        while True:
            waiter.settle(confirms)
            confirms.clear()
            if waiter.upto >= waiter.sent:
                break
            data = client.sock.recv(RECV_BYTES)
            if not data:
                raise BrokerClosed("broker closed the connection")
            self._reader.feed(data, deliveries, confirms)
        if waiter.nacked != nacked_before:
            raise PublishError(f"the broker refused {waiter.nacked - nacked_before} of {count} "
                               f"jobs (published after #{first})")

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
            for name in queues:
                topology.queue(name)
