"""Sampled message traces: a bounded ring of lifecycle events of a few messages.

Why sampled and bounded: a trace per message would be an object per message. One message in
``sample_every`` is traced (0, the default, turns sampling off), plus every message whose publisher
set the header ``x-ferrymq-trace`` (a FerryMQ extension: any value). The hot path pays one int
test (``sample_every``) and, only for messages whose content header carries headers, a search of
the raw header bytes; an untraced message's ``trace`` slot is the shared None.

The ring keeps the newest ``capacity`` traces (oldest evicted) and at most
``limits.TRACE_EVENTS_MAX`` events per trace. Times are wall-clock ms from the core's clock, read
only for traced messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ferrymq import limits

if TYPE_CHECKING:
    from ferrymq.core.clock import Clock
    from ferrymq.core.message import Message

HEADER = "x-ferrymq-trace"
HEADER_BYTES = HEADER.encode()
HEADERS_FLAG = 0x20  # bit 13 of the content header's property flags, in its first byte

EVENTS = frozenset({"published", "routed", "stored", "delivered", "acked", "nacked", "requeued",
                    "rejected", "expired", "dead_lettered", "dropped"})


def marked(msg: Message) -> bool:
    """Did the publisher ask for this message to be traced (the ``x-ferrymq-trace`` header)?"""
    raw = msg.raw_props
    if raw is not None:
        return bool(raw[0] & HEADERS_FLAG) and HEADER_BYTES in raw
    headers = msg.props.headers
    return headers is not None and HEADER in headers


class Trace:
    __slots__ = ("events", "exchange", "id", "routing_key", "size", "vhost")

    def __init__(self, id_: int, vhost: str, exchange: str, routing_key: str, size: int) -> None:
        self.id = id_
        self.vhost = vhost
        self.exchange = exchange
        self.routing_key = routing_key
        self.size = size
        self.events: list[tuple[int, str, str | None, str]] = []

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "vhost": self.vhost, "exchange": self.exchange,
            "routing_key": self.routing_key, "size": self.size,
            "events": [{"at_ms": at, "event": ev, "queue": q, "detail": d}
                       for at, ev, q, d in self.events],
        }


class Tracer:
    """The ring. ``start`` decides whether a publish is traced; ``record`` adds an event."""

    def __init__(self, clock: Clock, capacity: int = limits.TRACE_CAPACITY) -> None:
        self.clock = clock
        self.capacity = capacity
        self.sample_every = 0
        self._countdown = 0
        self._next_id = 1
        self.traces: dict[int, Trace] = {}  # id -> trace, oldest first
        self.awaiting_store: list[tuple[int, str]] = []  # (trace id, queue) logged, not yet fsynced

    def configure(self, sample_every: int) -> None:
        if not 0 <= sample_every <= limits.TRACE_SAMPLE_EVERY_MAX:
            raise ValueError(f"sample_every must be 0..{limits.TRACE_SAMPLE_EVERY_MAX}")
        self.sample_every = sample_every
        self._countdown = 0

    def clear(self) -> None:
        self.traces.clear()
        self.awaiting_store.clear()

    def wants(self, msg: Message) -> bool:
        """Sampled (one in N) or marked by its publisher."""
        if self.sample_every:
            if self._countdown <= 0:
                self._countdown = self.sample_every
            self._countdown -= 1
            if self._countdown == 0:
                return True
        return marked(msg)

    def start(self, vhost: str, exchange: str, routing_key: str, msg: Message) -> int:
        """Open a trace for ``msg`` (its ``trace`` slot gets the id) with its ``published`` event."""
        tid = self._next_id
        self._next_id += 1
        self.traces[tid] = Trace(tid, vhost, exchange, routing_key, len(msg.body))
        while len(self.traces) > self.capacity:
            del self.traces[next(iter(self.traces))]
        msg.trace = tid
        self.record(tid, "published", None, f"exchange={exchange!r} routing_key={routing_key!r}")
        return tid

    def record(self, tid: int, event: str, queue: str | None = None, detail: str = "") -> None:
        trace = self.traces.get(tid)
        if trace is not None and len(trace.events) < limits.TRACE_EVENTS_MAX:
            trace.events.append((self.clock.now_ms(), event, queue, detail))

    def stored(self, waiting: list[tuple[int, str]], ok: bool, commit: int) -> None:
        """The commit covering ``waiting`` (taken from ``awaiting_store``) returned (the shell)."""
        for tid, queue in waiting:
            self.record(tid, "stored" if ok else "dropped", queue,
                        f"fsync commit {commit}" if ok else "fsync failed")

    def newest_first(self) -> list[Trace]:
        return list(reversed(self.traces.values()))
