"""Per-delivery leases (a FerryMQ extension to AMQP): a manual-ack delivery held past its deadline is
taken back from the channel and requeued, and the channel stays open (a consumer timeout closes it).

A queue declared with ``x-delivery-lease`` (ms; policy key ``delivery-lease``) leases every manual-ack
delivery it makes. A consumer extends or releases leases by publishing on the same channel to the
exchange ``amq.ferrymq.lease``: routing key = a delivery tag in decimal or ``*`` (every unacked
delivery of the channel), header ``x-lease-ms`` = the new lease from now (0: release now). Such a
publish is confirmed like any other and never routed. See docs/extensions.md.

One ``Leases`` per channel that has ever leased a delivery: channels that never do hold None and pay
nothing. Deadlines sit in a heap with lazy deletion: an extension pushes a new entry and a settle
only drops the tag from ``deadlines``, leaving its heap entry to be skipped when it surfaces; the heap
is rebuilt when stale entries outnumber live ones, so it stays O(live leases). Taken-back tags are
remembered (bounded, oldest forgotten first) so that a late ack, nack or reject of one is ignored and
counted instead of closing the channel with 406 unknown delivery tag.
"""

from __future__ import annotations

import heapq
from typing import Any

from ferrymq.errors import PreconditionFailed
from ferrymq.limits import DELIVERY_LEASE_MAX_MS, LEASE_LATE_TAGS_MAX

LEASE_EXCHANGE = "amq.ferrymq.lease"
LEASE_EXCHANGE_TYPE = "direct"  # declared like the amq.* defaults; it never routes anything
LEASE_HEADER = "x-lease-ms"
ALL_TAGS = "*"
_COMPACT_SLACK = 64  # stale heap entries tolerated beyond the live count before a rebuild
# A heap entry is one int, deadline << 64 | tag (AMQP delivery tags are 64-bit): ints order as the
# (deadline, tag) pairs would, but cost no tuple per lease and nothing to the garbage collector.
_TAG_BITS = 64
_TAG_MASK = (1 << _TAG_BITS) - 1


class Leases:
    __slots__ = ("_heap", "_late", "deadlines")

    def __init__(self) -> None:
        self.deadlines: dict[int, int] = {}  # delivery tag -> monotonic ms its lease ends
        self._heap: list[int] = []  # deadline << 64 | tag, stale entries included
        self._late: dict[int, None] = {}  # taken-back tags, oldest first (an ordered set)

    def hold(self, tag: int, deadline_ms: int) -> None:
        """Lease (or re-lease) ``tag`` until ``deadline_ms``."""
        deadlines = self.deadlines
        deadlines[tag] = deadline_ms
        heap = self._heap
        heapq.heappush(heap, deadline_ms << _TAG_BITS | tag)
        if len(heap) > 2 * len(deadlines) + _COMPACT_SLACK:
            self._heap = [d << _TAG_BITS | t for t, d in deadlines.items()]
            heapq.heapify(self._heap)

    def drop(self, tag: int) -> None:
        """The delivery was settled: its lease is over."""
        self.deadlines.pop(tag, None)

    def next_deadline_ms(self) -> int | None:
        """The earliest live deadline (stale heads are discarded here, so no wake-up is wasted)."""
        heap, deadlines = self._heap, self.deadlines
        while heap and deadlines.get(heap[0] & _TAG_MASK) != heap[0] >> _TAG_BITS:
            heapq.heappop(heap)
        return heap[0] >> _TAG_BITS if heap else None

    def due(self, now_ms: int) -> list[int]:
        """Tags whose lease has ended by ``now_ms``; they are no longer leased."""
        heap, deadlines = self._heap, self.deadlines
        out = []
        while heap and heap[0] >> _TAG_BITS <= now_ms:
            key = heapq.heappop(heap)
            tag = key & _TAG_MASK
            if deadlines.get(tag) == key >> _TAG_BITS:
                del deadlines[tag]
                out.append(tag)
        return out

    def taken_back(self, tags: list[int]) -> None:
        late = self._late
        for tag in tags:
            self.deadlines.pop(tag, None)
            late[tag] = None
        while len(late) > LEASE_LATE_TAGS_MAX:
            del late[next(iter(late))]

    def is_late(self, tag: int) -> bool:
        return tag in self._late

    def forget_late(self, tag: int) -> bool:
        """A settle named ``tag``: True (and forgotten) if it was taken back."""
        if tag not in self._late:
            return False
        del self._late[tag]
        return True

    def forget_late_upto(self, upto: int) -> int:
        """A multiple settle covered every tag up to ``upto``: forget those taken back; how many."""
        if not self._late:
            return 0
        covered = [t for t in self._late if t <= upto]
        for tag in covered:
            del self._late[tag]
        return len(covered)


def lease_request(routing_key: str, headers: dict[str, Any] | None) -> tuple[int | None, int]:
    """(delivery tag, or None for every unacked delivery; lease ms from now) of a publish to
    ``amq.ferrymq.lease``. A malformed request is a user mistake: one PRECONDITION_FAILED."""
    ms = (headers or {}).get(LEASE_HEADER)
    if isinstance(ms, bool) or not isinstance(ms, int) or not 0 <= ms <= DELIVERY_LEASE_MAX_MS:
        raise PreconditionFailed(
            f"publish to '{LEASE_EXCHANGE}' needs header '{LEASE_HEADER}': an integer from 0 to "
            f"{DELIVERY_LEASE_MAX_MS} (ms), got {ms!r}")
    if routing_key == ALL_TAGS:
        return None, ms
    if not routing_key.isdigit() or not routing_key.isascii():
        raise PreconditionFailed(
            f"publish to '{LEASE_EXCHANGE}' needs a routing key that is a delivery tag in decimal "
            f"or '{ALL_TAGS}', got '{routing_key}'")
    return int(routing_key), ms
