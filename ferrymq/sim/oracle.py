"""The AMQP invariants: what the simulated node must never do, checked as it happens.

The oracle hears from both sides: clients say what they published, what was confirmed, what they
received and what they settled; the node says what the core emitted and which settles it processed.
A broken rule raises ``Violation`` at once, so the failing step is the last line of the trace.

The rules (a message is identified by the id at the start of its body):
  * confirmed and not lost: a publisher-confirmed persistent message routed to a durable queue is in
    that queue after every restart, and is delivered and settled by the end, unless a client settled it
    (ack, or nack/reject without requeue); in the incarnation it was published, any confirmed message;
  * per-queue order: per consumer and publisher, first deliveries arrive in publish order;
  * delivery flags: redelivered only for a message delivered before; set for one delivered before in
    the same incarnation (requeued), and after a restart for one whose delivery record was fsynced;
  * no delivery of a message while it is out with a consumer, nor after its ack was processed;
  * what a client decodes is what the core said (the redelivered bit through the codecs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class Violation(AssertionError):
    """An invariant broke; the runner adds the seed, the replay command and the trace."""


@dataclass(slots=True)
class Msg:
    mid: str
    queue: str
    persistent: bool
    durable_queue: bool
    publisher: str
    pubseq: int
    incarnation: int
    confirmed: bool = False
    client_settled: bool = False
    emitted_ever: bool = False
    emitted_inc: int = -1
    outstanding: bool = False
    settled_inc: int = -1
    must_flag: bool = False
    last_delivery: tuple[int, int] = (0, 0)  # (log key, turn) of the last emission


class AmqpOracle:
    def __init__(self) -> None:
        self.broken: str | None = None  # the first violation (one raised inside the codec is caught there)
        self.msgs: dict[str, Msg] = {}
        self.incarnation = 0
        self._order: dict[tuple[str, str, str], int] = {}  # (consumer, queue, publisher) -> last pubseq
        self.counts = dict.fromkeys(("published", "confirmed", "delivered", "redelivered", "settled",
                                     "recovered_checked"), 0)

    def _fail(self, text: str) -> Violation:
        if self.broken is None:
            self.broken = text
        return Violation(text)

    def _msg(self, mid: str) -> Msg:
        m = self.msgs.get(mid)
        if m is None:
            raise self._fail(f"{mid}: delivered or confirmed, but never published")
        return m

    def queue_of(self, mid: str) -> str:
        """The queue a message was published to ('?' for one never published: ``emitted`` says so)."""
        m = self.msgs.get(mid)
        return m.queue if m is not None else "?"

    # --- clients ---------------------------------------------------------------------------------

    def published(self, mid: str, queue: str, persistent: bool, durable_queue: bool, publisher: str,
                  pubseq: int) -> None:
        self.msgs[mid] = Msg(mid, queue, persistent, durable_queue, publisher, pubseq, self.incarnation)
        self.counts["published"] += 1

    def confirmed(self, mid: str) -> None:
        self._msg(mid).confirmed = True
        self.counts["confirmed"] += 1

    def client_settled(self, mid: str) -> None:
        self._msg(mid).client_settled = True

    def received(self, consumer: str, mid: str, redelivered: bool, core_said: bool | None) -> None:
        m = self._msg(mid)
        if core_said is not None and core_said != redelivered:
            raise self._fail(f"{mid}: the core emitted redelivered={core_said}, "
                             f"the client decoded {redelivered}")
        self.counts["delivered"] += 1
        self.counts["redelivered"] += redelivered
        if redelivered:
            return
        key = (consumer, m.queue, m.publisher)
        last = self._order.get(key, -1)
        if m.pubseq <= last:
            raise self._fail(f"{mid}: first delivery to {consumer} out of publish order "
                            f"(publisher {m.publisher} seq {m.pubseq} after seq {last} on {m.queue})")
        self._order[key] = m.pubseq

    # --- the node --------------------------------------------------------------------------------

    def emitted(self, mid: str, redelivered: bool, queue: str, log_key: int, turn: int) -> None:
        m = self._msg(mid)
        if m.settled_inc == self.incarnation:
            raise self._fail(f"{mid}: delivered again after its ack was processed")
        if m.outstanding:
            raise self._fail(f"{mid}: delivered while a delivery of it is still unsettled")
        if redelivered and not m.emitted_ever:
            raise self._fail(f"{mid}: redelivered=True on its first delivery")
        if not redelivered and m.emitted_inc == self.incarnation:
            raise self._fail(f"{mid}: redelivered=False although it was delivered before in this incarnation")
        if not redelivered and m.must_flag:
            raise self._fail(f"{mid}: redelivered=False after a restart, though its delivery was fsynced")
        m.emitted_ever, m.emitted_inc, m.outstanding = True, self.incarnation, True
        m.last_delivery = (log_key, turn)

    def processed(self, mids: list[str], settled: bool) -> None:
        for mid in mids:
            m = self._msg(mid)
            m.outstanding = False
            if settled:
                m.settled_inc = self.incarnation
                self.counts["settled"] += 1

    # --- crashes ---------------------------------------------------------------------------------

    def crashed(self, synced_turn: dict[int, int]) -> None:
        """Power loss: nothing is out any more; a delivery whose record was fsynced must be flagged."""
        for m in self.msgs.values():
            m.outstanding = False
            key, turn = m.last_delivery
            if m.emitted_inc == self.incarnation and key and synced_turn.get(key, 0) >= turn:
                m.must_flag = m.must_flag or (m.durable_queue and m.persistent)
        self.incarnation += 1
        self._order.clear()  # consumers are new after a restart

    def required(self, queue: str | None = None, final: bool = False) -> set[str]:
        out = set()
        for m in self.msgs.values():
            if not m.confirmed or m.client_settled or (queue is not None and m.queue != queue):
                continue
            if (m.durable_queue and m.persistent) or (final and m.incarnation == self.incarnation):
                out.add(m.mid)
        return out

    def recovered(self, queue: str, ids: list[str], paged: int) -> None:
        """After a restart, before any client is back: the queue holds every confirmed message."""
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise self._fail(f"{queue}: recovered twice: {dup[:5]}")
        missing = self.required(queue) - set(ids)
        if missing and not paged:
            raise self._fail(f"{queue}: confirmed message(s) lost by the restart: {sorted(missing)[:5]}")
        if paged and len(self.required(queue)) > len(ids) + paged:
            raise self._fail(f"{queue}: fewer messages recovered than were confirmed")
        self.counts["recovered_checked"] += len(ids)

    def final(self, leftover: dict[str, Any]) -> None:
        """After the drain: every confirmed message was delivered and settled by a client."""
        missing = self.required(final=True)
        if missing:
            raise self._fail(f"confirmed message(s) never delivered and settled: {sorted(missing)[:5]} "
                            f"(queues left: {leftover})")
