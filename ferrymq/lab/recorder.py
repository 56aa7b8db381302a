"""What a run records, per series (one line on every chart: a target in one mode under one variant):
counters and latency bucketed by time, sampled gauges, the events of the timeline (faults, phases,
restarts), and the ledger that turns receipts into losses and duplicates.

Why a ledger of ids rather than counts: "lost" and "duplicated" mean something only against the
producer's own record of what the broker confirmed. A bytearray indexed by message id (one byte
per message: confirmed flag, receipt count capped at 255) keeps that record for millions of
messages in a few MiB, with no object per message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from ferrymq.bench.histogram import new_histogram

# The counters every series keeps, in the order reports show them.
COUNTERS = ("sent", "confirmed", "publish_failed", "received", "acked", "failed", "redelivered", "retried",
            "dead_lettered", "dropped", "drained", "errors", "deduplicated")
CONFIRMED_BIT = 0x80
COUNT_MASK = 0x7F


@dataclass
class Event:
    t: float  # seconds from the series' start
    kind: str  # "fault", "fault-end", "phase", "restart", "note"
    label: str
    until: float | None = None  # for a fault with a duration: when it ends

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "kind": self.kind, "label": self.label, "until": self.until}


class Ledger:
    """Per message id: was it confirmed, how many times was it received (processed)."""

    __slots__ = ("marks", "sent")

    def __init__(self) -> None:
        self.marks = bytearray()
        self.sent = 0

    def next_id(self) -> int:
        msg_id = self.sent
        self.sent += 1
        if msg_id >= len(self.marks):
            self.marks.extend(bytes(max(1024, len(self.marks))))
        return msg_id

    def confirm(self, msg_id: int) -> None:
        self.marks[msg_id] |= CONFIRMED_BIT

    def receive(self, msg_id: int) -> bool:
        """Count a receipt; True when it is the first one."""
        if msg_id >= self.sent:
            return False  # not ours (another run's message left in a queue)
        mark = self.marks[msg_id]
        count = mark & COUNT_MASK
        if count < COUNT_MASK:
            self.marks[msg_id] = (mark & CONFIRMED_BIT) | (count + 1)
        return count == 0

    def books(self) -> dict[str, int]:
        """Confirmed, confirmed-but-never-received (lost), receipts beyond the first (duplicates),
        unique ids received, and ids received that were never confirmed."""
        lost = dups = unique = unconfirmed_received = confirmed = 0
        for mark in memoryview(self.marks)[: self.sent]:
            count = mark & COUNT_MASK
            if mark & CONFIRMED_BIT:
                confirmed += 1
                if not count:
                    lost += 1
            elif count:
                unconfirmed_received += 1
            if count:
                unique += 1
                dups += count - 1
        return {"confirmed": confirmed, "lost": lost, "duplicates": dups, "unique_received": unique,
                "received_unconfirmed": unconfirmed_received}


@dataclass
class Bucket:
    counts: dict[str, int] = field(default_factory=dict)
    latency: HdrHistogram | None = None
    gauges: dict[str, float] = field(default_factory=dict)


class Series:
    """One line on the charts. Time is the monotonic clock, counted from the series' start."""

    def __init__(self, name: str, target: str, variant: str = "", interval_s: float = 0.5,
                 now_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.name, self.target, self.variant = name, target, variant
        self.interval_ns = int(interval_s * 1e9)
        self.now_ns = now_ns
        self.origin_ns = now_ns()
        self.buckets: dict[int, Bucket] = {}
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.latency = new_histogram()
        self.ledger = Ledger()
        self.events: list[Event] = []
        self.figures: dict[str, Any] = {}
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self.ended_ns: int | None = None
        self.on_change: Callable[[Series], None] | None = None

    def begin(self) -> None:
        """Start the clock now: what was set up before (workers connecting) is not on the timeline."""
        assert not self.totals["sent"] and not self.events, "begin() before any traffic"
        self.origin_ns = self.now_ns()
        self.buckets.clear()

    def t(self, now_ns: int | None = None) -> float:
        return round(((self.now_ns() if now_ns is None else now_ns) - self.origin_ns) / 1e9, 3)

    def _bucket(self, now_ns: int) -> Bucket:
        k = max(0, (now_ns - self.origin_ns) // self.interval_ns)
        b = self.buckets.get(k)
        if b is None:
            b = self.buckets[k] = Bucket()
        return b

    def count(self, what: str, n: int = 1) -> None:
        if what not in self.totals:
            raise ValueError(f"unknown counter {what!r}: one of {', '.join(COUNTERS)}")
        self.totals[what] += n
        counts = self._bucket(self.now_ns()).counts
        counts[what] = counts.get(what, 0) + n

    def gauge(self, what: str, value: float) -> None:
        """A sampled value (depth, lag, memory, in-flight:<consumer>): the last one per bucket."""
        self._bucket(self.now_ns()).gauges[what] = value

    # -- the ledger -----------------------------------------------------------------------------
    def next_id(self) -> int:
        return self.ledger.next_id()

    def sent(self, n: int = 1) -> None:
        self.count("sent", n)

    def confirmed(self, msg_id: int) -> None:
        self.ledger.confirm(msg_id)
        self.count("confirmed")

    def received(self, msg_id: int, sent_ns: int, redelivered: bool = False) -> bool:
        """A message processed by a consumer: latency from its send time. True if first receipt."""
        now = self.now_ns()
        first = self.ledger.receive(msg_id)
        self.count("received")
        if redelivered:
            self.count("redelivered")
        us = max(1, (now - sent_ns) // 1000)
        self.latency.record_value(us)
        b = self._bucket(now)
        if b.latency is None:
            b.latency = new_histogram()
        b.latency.record_value(us)
        return first

    # -- the timeline ---------------------------------------------------------------------------
    def event(self, kind: str, label: str, duration_s: float | None = None) -> Event:
        t = self.t()
        ev = Event(t, kind, label, None if duration_s is None else round(t + duration_s, 3))
        self.events.append(ev)
        return ev

    def figure(self, name: str, value: Any) -> None:
        """A scenario-specific measurement (rebuild seconds, partition maps, sizes)."""
        self.figures[name] = value

    def table(self, title: str, rows: list[dict[str, Any]]) -> None:
        self.tables[title] = rows

    def end(self) -> None:
        self.ended_ns = self.now_ns()
