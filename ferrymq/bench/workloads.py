"""Workloads: what the generator offers a broker, and the topology (queues, exchange, dead-letter
queue) each one needs. One parameter set for every kind, so a scenario file is a flat table.

Kinds:
  max      open throttle: each producer keeps its confirm window full (or writes back to back)
  steady   a fixed total rate; latency from each message's intended send time
  bursty   ``rate`` while on for ``burst_on`` s, silent for ``burst_off`` s, repeated
  fanout   one publish to a fanout exchange reaches ``queues`` queues, each with its consumers
  task     ``producers`` feed one queue (or ``queues``) drained by ``consumers`` competing workers
           with manual acks; ``fail_rate`` of attempts fail and are retried (republished with an
           attempt count) up to ``max_retries`` times, then rejected into a dead-letter queue
  stream   an append-only log read from its first offset by every consumer: over AMQP a
           ``x-queue-type: stream`` queue; the Kafka protocol is the hook in ``stream_target``
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ferrymq.bench.pacing import Pacer
from ferrymq.bench.traffic import MIN_SIZE

KINDS = ("max", "steady", "bursty", "fanout", "task", "stream")


@dataclass
class Workload:
    kind: str = "max"
    size: int = 100  # body bytes (>= 9: send time + attempt count)
    rate: float = 0.0  # total msgs/s over all producers (steady, bursty); 0 = unbounded
    burst_on: float = 1.0  # bursty: seconds on
    burst_off: float = 1.0  # bursty: seconds off
    confirm: bool = True
    confirm_window: int = 500  # unconfirmed publishes allowed per producer
    persistent: bool = False  # durable queues, delivery_mode 2
    prefetch: int = 500
    multi_ack: int = 0  # 0: ack each delivery; N: one multiple ack per N
    queues: int = 1
    producers: int = 1
    consumers: int = 1
    fail_rate: float = 0.0  # task: share of job attempts that fail
    max_retries: int = 3  # task: retries after the first attempt, then the dead-letter queue
    work_us: float = 0.0  # simulated processing time per delivery in each consumer
    batch: int = 100  # publishes per write, at most
    seconds: float = 10.0  # measured window
    warmup: float = 1.0  # traffic before the window, not counted
    drain_seconds: float = 10.0  # after the window: wait for confirms and the last deliveries
    interval: float = 0.5  # timeline resolution, seconds
    nodelay: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown workload {self.kind!r}: one of {', '.join(KINDS)}")
        if self.size < MIN_SIZE:
            raise ValueError(f"size must be >= {MIN_SIZE} (the body carries the send time)")
        if self.kind == "steady" and self.rate <= 0:
            raise ValueError("a steady workload needs rate > 0")
        if self.kind == "bursty" and (self.burst_on <= 0 or self.burst_off <= 0):
            raise ValueError("a bursty workload needs burst_on > 0 and burst_off > 0")
        if self.queues < 1 or self.producers < 0 or self.consumers < 0:
            raise ValueError("queues >= 1, producers >= 0, consumers >= 0")
        if not 0.0 <= self.fail_rate < 1.0:
            raise ValueError("fail_rate must be in [0, 1)")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workload:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown workload parameters: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def pacer(self) -> Pacer:
        """Each producer's share of the schedule."""
        per = self.rate / self.producers if self.rate and self.producers else 0.0
        if self.kind == "bursty":
            return Pacer(per, self.burst_on, self.burst_off)
        return Pacer(per)

    def timeline_interval(self) -> float:
        """The interval, adjusted so the measured window is a whole number of intervals."""
        n = max(1, round(self.seconds / self.interval))
        return self.seconds / n


@dataclass(frozen=True)
class Topology:
    """Names and shape of what a run declares, derived from a workload and a run id."""

    queues: tuple[str, ...]
    exchange: str  # "" = the default exchange (routing key = queue)
    exchange_type: str  # "" when no exchange is declared
    dlq: str  # "" when none
    durable: bool
    queue_args: dict[str, Any]
    consume_args: dict[str, Any]
    producers: int
    consumers: int

    @classmethod
    def plan(cls, w: Workload, run_id: str) -> Topology:
        prefix = f"ferrymq-bench-{run_id}"
        queues = tuple(f"{prefix}-q{i}" for i in range(w.queues))
        # every queue needs a consumer of its own, or its messages would count as lost
        consumers = max(w.consumers, w.queues) if w.consumers else 0
        queue_args: dict[str, Any] = {}
        consume_args: dict[str, Any] = {}
        dlq = ""
        durable = w.persistent
        if w.kind == "task" and w.fail_rate > 0:
            dlq = f"{prefix}-dlq"
            queue_args = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
        if w.kind == "stream":
            durable = True  # stream queues must be durable
            queue_args = {"x-queue-type": "stream"}
            consume_args = {"x-stream-offset": "first"}
        exchange, etype = ("", "")
        if w.kind == "fanout":
            exchange, etype = f"{prefix}-fanout", "fanout"
        return cls(queues, exchange, etype, dlq, durable, queue_args, consume_args, w.producers, consumers)

    def producer_route(self, i: int) -> tuple[str, str]:
        """(exchange, routing key) producer i publishes to."""
        if self.exchange:
            return self.exchange, ""
        return "", self.queues[i % len(self.queues)]

    def consumer_queue(self, j: int) -> str:
        return self.queues[j % len(self.queues)]

    def consumers_on(self, queue: str) -> int:
        return sum(1 for j in range(self.consumers) if self.consumer_queue(j) == queue)

    def copies(self, i: int, stream: bool) -> int:
        """Deliveries that completing producer i's publishes takes: one per queue reached, and
        on a stream, one per consumer reading it (each reads the whole log)."""
        if not self.consumers:
            return 0
        reached = list(self.queues) if self.exchange else [self.producer_route(i)[1]]
        if stream:
            return sum(self.consumers_on(q) for q in reached)
        return len(reached)
