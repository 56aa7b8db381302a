"""The queue engine: ready messages, consumers with credit, TTL, length limits, dead-lettering.

Order follows RabbitMQ's classic queue: FIFO within a priority level; a requeued message goes
back to its original position (so it is delivered before anything published after it); expiry
is applied at the head. The queue never sends anything itself: deliveries go to the consumer's
channel, dead letters to the vhost, which routes them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from ferrymq.core.args import QueueArgs
from ferrymq.core.consumer import Consumer
from ferrymq.core.message import Message
from ferrymq.core.stats import Turn, time_in_queue
from ferrymq.errors import AccessRefused
from ferrymq.limits import (
    FLOW_READY_HIGH,
    PAGE_BATCH_BYTES,
    PAGE_BATCH_MESSAGES,
    PAGE_WINDOW_BYTES,
    PAGE_WINDOW_MESSAGES,
    TIME_IN_QUEUE_SAMPLE_MASK,
)

if TYPE_CHECKING:
    from ferrymq.core.clock import Clock
    from ferrymq.core.store import QueueStore


class QueueHost(Protocol):
    """What a queue needs of the vhost that holds it: its name (for RabbitMQ's error texts), a timer
    when the queue starts needing ticks, flow control, and routing of its dead letters. Declared
    here so the queue never imports the vhost (nor, through it, the broker): no import circle."""

    name: str

    def watch_queue(self, queue: Queue, force: bool = False) -> None: ...

    def queue_overloaded(self, queue: Queue) -> None: ...

    def dead_letter(self, queue: Queue, msg: Message, reason: str) -> None: ...

    @property
    def turn(self) -> Turn: ...

NO_EXPIRY = 0
WAIT_SAMPLE_MASK = TIME_IN_QUEUE_SAMPLE_MASK


class Entry:
    """One message in one queue: its position, delivery count and expiry (monotonic ms).

    ``offset`` is where the queue's log holds it (-1: not logged, as transient messages are).
    ``enqueued_ms`` is the turn stamp it was enqueued under (no clock read per message)."""

    __slots__ = ("deliveries", "enqueued_ms", "expires_at", "msg", "offset", "priority", "seq")

    def __init__(self, seq: int, msg: Message, expires_at: int, priority: int, offset: int = -1,
                 enqueued_ms: int = 0) -> None:
        self.seq = seq
        self.enqueued_ms = enqueued_ms  # the turn's monotonic ms (ferrymq.core.stats.Turn); 0: unknown
        self.msg = msg
        self.expires_at = expires_at
        self.priority = priority
        self.deliveries = 0
        self.offset = offset

    def __lt__(self, other: Entry) -> bool:
        return self.seq < other.seq


class _Level:
    """One priority level: fresh messages in a deque, requeued ones in a heap by position.

    Every requeued entry was delivered from the head, so it precedes every fresh one.
    """

    __slots__ = ("fresh", "returned")

    def __init__(self) -> None:
        self.fresh: deque[Entry] = deque()
        self.returned: list[Entry] = []

    def __len__(self) -> int:
        return len(self.fresh) + len(self.returned)

    def peek(self) -> Entry:
        return self.returned[0] if self.returned else self.fresh[0]

    def pop(self) -> Entry:
        return heapq.heappop(self.returned) if self.returned else self.fresh.popleft()

    def __iter__(self) -> Iterator[Entry]:
        yield from sorted(self.returned)
        yield from self.fresh


class Queue:
    __slots__ = (
        "_groups",
        "_levels",
        "_next_seq",
        "args",
        "arguments",
        "auto_delete",
        "clock",
        "consumers",
        "counters",
        "deleted",
        "durable",
        "exclusive_owner",
        "had_consumer",
        "last_used_ms",
        "lease_ms",
        "name",
        "operator_policy",
        "pageable",
        "paged_bytes",
        "paged_count",
        "plain",
        "policy",
        "ready_bytes",
        "ready_count",
        "store",
        "turn",
        "unacked_count",
        "vhost",
        "waits",
    )

    def __init__(
        self,
        name: str,
        vhost: QueueHost,
        clock: Clock,
        args: QueueArgs,
        *,
        durable: bool = False,
        auto_delete: bool = False,
        exclusive_owner: object | None = None,
        arguments: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.vhost = vhost
        self.clock = clock
        self.args = args
        self.plain = args.plain
        self.lease_ms = args.delivery_lease_ms or 0  # 0: deliveries are not leased (ferrymq.core.lease)
        self.policy: Any = None  # the ferrymq.core.policy.Policy in force, if any
        self.operator_policy: Any = None  # ... and the operator policy in force
        self.arguments = arguments or {}
        self.durable = durable
        self.auto_delete = auto_delete
        self.exclusive_owner = exclusive_owner
        levels = (args.max_priority or 0) + 1
        self._levels = [_Level() for _ in range(levels)]
        self._next_seq = 0
        self.consumers: list[Consumer] = []
        self._groups: list[list[Any]] = []  # [priority, round-robin index, [consumers]]
        self.ready_count = 0  # ready in memory; ``paged_count`` more wait in the log
        self.ready_bytes = 0
        self.unacked_count = 0
        self.store: QueueStore | None = None
        self.pageable = False
        self.paged_count = 0
        self.paged_bytes = 0
        self.had_consumer = False
        self.deleted = False
        self.last_used_ms = clock.monotonic_ms()
        self.counters = dict.fromkeys(
            ("published", "delivered", "redelivered", "acked", "requeued", "dead_lettered", "dropped",
             "expired", "deduplicated"),
            0,
        )
        self.turn = vhost.turn
        self.waits = time_in_queue()  # ms from enqueue to first delivery, one message in 8

    # --- publish -------------------------------------------------------------------------

    def attach_store(self, store: QueueStore) -> None:
        """Make the queue durable: persistent messages are logged, and what the log holds comes back.

        Only single-level queues without length limits page their backlog out to the log: their
        order is the log's order, so the tail needs no index in memory."""
        self.store = store
        self.pageable = self._can_page()
        window = PAGE_WINDOW_MESSAGES if self.pageable else 2**62
        loaded, self.paged_count, self.paged_bytes = store.recover(window)
        for stored in loaded:
            self._push(self._stored_entry(stored))

    def _can_page(self) -> bool:
        a = self.args
        return (
            a.max_priority is None and a.max_length is None and a.max_length_bytes is None
            and not a.fifo
        )

    def apply_args(self, args: QueueArgs) -> None:
        """Act on new effective arguments (a policy was set, changed or cleared), as RabbitMQ does:
        a new length limit applies at once to what the queue holds, dropping the excess from the
        head if the queue was in drop-head mode before (RabbitMQ applies max-length before it
        applies overflow, so even a policy that also sets reject-publish drops the excess of a
        drop-head queue); a new message TTL applies to messages published from now on (a
        message's expiry is fixed when it is enqueued); a new x-expires counts from now; a new
        delivery lease applies to deliveries made from now on. The fast path follows ``args.plain``."""
        old = self.args
        self.args = args
        if args.expires_ms != old.expires_ms:
            self.last_used_ms = self.clock.monotonic_ms()
        self.plain = args.plain
        self.lease_ms = args.delivery_lease_ms or 0  # deliveries from now on; held ones keep theirs
        if self.store is not None:
            self.pageable = self._can_page()
            if not self.pageable:  # limits count every message: bring the paged tail back in
                while self.paged_count and self._page_in():
                    pass
        if old.overflow == "drop-head":
            self._enforce_drop_head()
        self.vhost.watch_queue(self, force=True)
        self.dispatch()

    def _stored_entry(self, stored: Any) -> Entry:
        exp = stored.expires_wall_ms
        if exp:
            exp = max(1, self.clock.monotonic_ms() + exp - self.clock.now_ms())
        entry = Entry(self._next_seq, stored.msg, exp, self._priority(stored.msg), stored.offset)
        self._next_seq += 1
        entry.deliveries = stored.deliveries
        if exp:
            self.vhost.watch_queue(self, force=True)
        return entry

    def _page_in(self) -> bool:
        """Read the next batch of the paged tail into memory; True if anything came."""
        assert self.store is not None
        batch = self.store.page_in(PAGE_BATCH_MESSAGES, PAGE_BATCH_BYTES)
        if not batch:  # the log lost them (a corrupt record was reported): stop counting them
            self.paged_count = self.paged_bytes = 0
            return False
        for stored in batch:
            self.paged_count -= 1
            self.paged_bytes -= len(stored.msg.body)
            self._push(self._stored_entry(stored))
        if self.paged_count <= 0:
            self.paged_count = self.paged_bytes = 0
        return True

    def _log(self, msg: Message, expires_at: int) -> int:
        """Log a persistent message (or any message, once paging); -1 when it stays in memory only.

        Returns -2 when the message was paged out: it has no entry until it is paged back in."""
        store = self.store
        assert store is not None
        paging = self.paged_count > 0 or (
            self.pageable
            and (self.ready_count >= PAGE_WINDOW_MESSAGES or self.ready_bytes >= PAGE_WINDOW_BYTES)
        )
        if not paging and not msg.persistent:
            return -1
        wall = 0
        if expires_at:
            wall = self.clock.now_ms() + expires_at - self.clock.monotonic_ms()
        if not paging:
            return store.log_publish(msg, wall, False)
        if not self.paged_count:
            store.start_paging()
        store.log_publish(msg, wall, not msg.persistent)
        self.paged_count += 1
        self.paged_bytes += len(msg.body)
        return -2

    def publish(self, msg: Message) -> bool:
        """Enqueue (or hand straight to a consumer). False: refused by ``x-overflow`` reject-publish."""
        self.counters["published"] += 1
        if self.store is not None and (msg.persistent or self.paged_count or self.pageable):
            return self._publish_slow(msg)
        if self.plain and not msg.props.expiration:
            entry = Entry(self._next_seq, msg, NO_EXPIRY, 0, -1, self.turn.ms)
            self._next_seq += 1
            if not self.ready_count and self.consumers:  # (no store here, so nothing is paged)
                consumer = self._pick()
                if consumer is not None:
                    self._deliver(consumer, entry)
                    return True
            self._levels[0].fresh.append(entry)
            self.ready_count += 1
            self.ready_bytes += len(msg.body)
            if self.ready_count > FLOW_READY_HIGH and self.consumers:
                self.vhost.queue_overloaded(self)
            return True
        return self._publish_slow(msg)

    def _publish_slow(self, msg: Message) -> bool:
        if self._would_overflow(msg) and self.args.overflow != "drop-head":
            if self.args.overflow == "reject-publish-dlx":
                self.vhost.dead_letter(self, msg, "maxlen")
            self.counters["dropped"] += 1
            return False
        expires_at = self._expiry(msg)
        offset = -1
        if self.store is not None:
            offset = self._log(msg, expires_at)
            if offset == -2:  # paged out: it waits in the log behind the rest of the backlog
                if expires_at:
                    self.vhost.watch_queue(self, force=True)
                return True
        entry = Entry(self._next_seq, msg, expires_at, self._priority(msg), offset, self.turn.ms)
        self._next_seq += 1
        if entry.expires_at:
            self.vhost.watch_queue(self, force=True)
        if entry.expires_at and entry.expires_at <= self.clock.monotonic_ms():
            # TTL 0: delivered only if a consumer takes it now, else expired (RabbitMQ).
            consumer = self._pick() if not self.ready_count else None
            if consumer is not None:
                self._deliver(consumer, entry)
            else:
                self._expire(entry)
            return True
        self._push(entry)
        self._enforce_drop_head()
        self.dispatch()
        if self.ready_count > FLOW_READY_HIGH and self.consumers:
            self.vhost.queue_overloaded(self)
        return True

    def _would_overflow(self, msg: Message) -> bool:
        a = self.args
        if a.max_length is not None and self.ready_count + 1 > a.max_length:
            return True
        return (
            a.max_length_bytes is not None
            and self.ready_bytes + len(msg.body) > a.max_length_bytes
        )

    def _enforce_drop_head(self) -> None:
        a = self.args
        while self.ready_count and (
            (a.max_length is not None and self.ready_count > a.max_length)
            or (a.max_length_bytes is not None and self.ready_bytes > a.max_length_bytes)
        ):
            entry = self._pop()
            self.counters["dropped"] += 1
            self._dead_letter(entry, "maxlen")

    def _expiry(self, msg: Message) -> int:
        ttl = self.args.message_ttl_ms
        exp = msg.props.expiration
        if exp:
            try:
                per_msg = int(exp)
            except ValueError:
                per_msg = None
            if per_msg is not None and per_msg >= 0:
                ttl = per_msg if ttl is None else min(ttl, per_msg)
        if ttl is None:
            return NO_EXPIRY
        return self.clock.monotonic_ms() + ttl or 1

    def _priority(self, msg: Message) -> int:
        top = len(self._levels) - 1
        if not top:
            return 0
        p = msg.props.priority or 0
        return top if p > top else p

    # --- ready list ----------------------------------------------------------------------

    def _push(self, entry: Entry) -> None:
        self._levels[entry.priority].fresh.append(entry)
        self.ready_count += 1
        self.ready_bytes += len(entry.msg.body)

    def _pop(self) -> Entry:
        levels = self._levels
        i = len(levels) - 1
        while not levels[i]:
            i -= 1
        entry = levels[i].pop()
        self.ready_count -= 1
        self.ready_bytes -= len(entry.msg.body)
        return entry

    def _take_next(self) -> Entry | None:
        """The next entry to deliver; a FIFO-group queue may hold back the head (None)."""
        return self._pop()

    def _peek(self) -> Entry:
        for level in reversed(self._levels):
            if level:
                return level.peek()
        raise IndexError("empty queue")

    def ready_entries(self) -> Iterator[Entry]:
        """Ready messages in delivery order (for inspection, not the hot path)."""
        for level in reversed(self._levels):
            yield from level

    # --- consumers -----------------------------------------------------------------------

    def add_consumer(self, consumer: Consumer) -> None:
        if any(c.exclusive for c in self.consumers) or (consumer.exclusive and self.consumers):
            raise AccessRefused(
                f"queue '{self.name}' in vhost '{self.vhost.name}' in exclusive use"
            )
        self.consumers.append(consumer)
        self.had_consumer = True
        self._regroup()
        self.dispatch()

    def remove_consumer(self, consumer: Consumer) -> None:
        self.consumers.remove(consumer)
        self.last_used_ms = self.clock.monotonic_ms()
        self._regroup()
        self.dispatch()

    def _regroup(self) -> None:
        """Consumers by priority, highest first; with single-active-consumer only the oldest."""
        active = self.consumers[:1] if self.args.single_active_consumer else self.consumers
        groups: dict[int, list[Consumer]] = {}
        for c in active:
            groups.setdefault(c.priority, []).append(c)
        self._groups = [[p, 0, cs] for p, cs in sorted(groups.items(), reverse=True)]

    def active_consumer(self) -> Consumer | None:
        return self._groups[0][2][0] if self._groups else None

    def _pick(self) -> Consumer | None:
        """The next consumer with credit: round-robin within the highest priority that has one."""
        for group in self._groups:
            consumers = group[2]
            n = len(consumers)
            start = group[1]
            for k in range(n):
                c = consumers[(start + k) % n]
                if c.has_credit():
                    group[1] = (start + k + 1) % n
                    return c
        return None

    def dispatch(self) -> None:
        """Hand ready messages to consumers while both exist."""
        while (self.ready_count or (self.paged_count and self._page_in())) and self._groups:
            consumer = self._pick()
            if consumer is None:
                return
            entry = self._take_next()
            if entry is None:
                return
            if entry.expires_at and entry.expires_at <= self.clock.monotonic_ms():
                self._expire(entry)
                continue
            self._deliver(consumer, entry)

    def _deliver(self, consumer: Consumer, entry: Entry) -> None:
        entry.deliveries += 1
        self.counters["delivered"] += 1
        if entry.deliveries > 1:
            self.counters["redelivered"] += 1
        elif not entry.seq & WAIT_SAMPLE_MASK and entry.enqueued_ms:  # one delivery in 8
            self.waits.observe(self.turn.ms - entry.enqueued_ms)
        if entry.offset >= 0:
            self.store.log_delivered(entry.offset)  # type: ignore[union-attr]
        if consumer.no_ack:
            self.counters["acked"] += 1
            self._forget(entry)
        else:
            self.unacked_count += 1
            consumer.unacked += 1
        consumer.channel.deliver(consumer, self, entry)

    # --- basic.get -----------------------------------------------------------------------

    def get(self) -> Entry | None:
        """Take the head for basic.get (the caller records the delivery)."""
        self.last_used_ms = self.clock.monotonic_ms()
        while self.ready_count or (self.paged_count and self._page_in()):
            entry = self._take_next()
            if entry is None:
                return None
            if entry.expires_at and entry.expires_at <= self.last_used_ms:
                self._expire(entry)
                continue
            entry.deliveries += 1
            self.counters["delivered"] += 1
            if entry.deliveries > 1:
                self.counters["redelivered"] += 1
            elif not entry.seq & WAIT_SAMPLE_MASK and entry.enqueued_ms:
                self.waits.observe(self.turn.ms - entry.enqueued_ms)
            if entry.offset >= 0:
                self.store.log_delivered(entry.offset)  # type: ignore[union-attr]
            return entry
        return None

    # --- settlement ----------------------------------------------------------------------

    def settle(self, entry: Entry, consumer: Consumer | None) -> None:
        """The delivery was acked: the message leaves the queue for good."""
        self.counters["acked"] += 1
        self.unacked_count -= 1
        if consumer is not None:
            consumer.unacked -= 1
        if entry.offset >= 0:
            self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        """The message is gone from this queue for good: its log record may be reclaimed."""
        if entry.offset >= 0 and self.store is not None and not self.deleted:
            self.store.log_settle(entry.offset)
            entry.offset = -1

    def _dead_letter(self, entry: Entry, reason: str) -> None:
        """Gone from here into the DLX's queues: with a DLX the log settles it only once their
        publishes are committed (a crash between the two leaves it in both, never in neither)."""
        if entry.offset >= 0 and self.store is not None and not self.deleted:
            if self.args.dead_letter_exchange is not None:
                self.store.log_moved(entry.offset)
            else:
                self.store.log_settle(entry.offset)
            entry.offset = -1
        self.vhost.dead_letter(self, entry.msg, reason)

    def requeue(self, entry: Entry, consumer: Consumer | None) -> None:
        """Back to its original position, unless the delivery limit says dead-letter instead."""
        self.unacked_count -= 1
        if consumer is not None:
            consumer.unacked -= 1
        limit = self.args.delivery_limit
        if limit is not None and entry.deliveries > limit:
            self._dead_letter(entry, "delivery_limit")  # counts dead_lettered
            return
        if entry.offset >= 0 and not self.deleted:
            self.store.log_requeue(entry.offset)  # type: ignore[union-attr]
        self.counters["requeued"] += 1
        level = self._levels[entry.priority]
        heapq.heappush(level.returned, entry)
        self.ready_count += 1
        self.ready_bytes += len(entry.msg.body)

    def discard(self, entry: Entry, consumer: Consumer | None) -> None:
        """Rejected or nacked without requeue: dead-lettered if the queue has a DLX."""
        self.unacked_count -= 1
        if consumer is not None:
            consumer.unacked -= 1
        self._dead_letter(entry, "rejected")

    def _expire(self, entry: Entry) -> None:
        self.counters["expired"] += 1
        self._dead_letter(entry, "expired")

    def purge(self) -> int:
        count = self.ready_count + self.paged_count
        if self.store is not None and not self.deleted:
            for level in self._levels:
                for entry in level:
                    self._forget(entry)
            if self.paged_count:
                self.store.drop_paged()
        for level in self._levels:
            level.fresh.clear()
            level.returned.clear()
        self.ready_count = 0
        self.ready_bytes = 0
        self.paged_count = self.paged_bytes = 0
        return count

    # --- timers --------------------------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        """When this queue next needs a tick: head expiry or idle-queue expiry."""
        deadline = None
        if self.ready_count:
            deadline = self._peek().expires_at or None
        if self.args.expires_ms is not None and not self.consumers:
            idle = self.last_used_ms + self.args.expires_ms
            deadline = idle if deadline is None else min(deadline, idle)
        return deadline

    def tick(self, now_ms: int) -> bool:
        """Expire heads that are due. Returns True when the queue itself has expired (x-expires)."""
        while self.ready_count or (self.paged_count and self._page_in()):
            head = self._peek()
            if not head.expires_at or head.expires_at > now_ms:
                break
            self._expire(self._pop())
        if self.args.expires_ms is not None and not self.consumers:
            return now_ms >= self.last_used_ms + self.args.expires_ms
        return False

    def touch(self) -> None:
        """A redeclare or get counts as use for x-expires."""
        self.last_used_ms = self.clock.monotonic_ms()

    def oldest_enqueued_ms(self) -> int:
        """The turn stamp of the oldest ready message in memory (0: none, or unknown)."""
        stamps = [lv.peek().enqueued_ms for lv in self._levels if lv]
        stamps = [s for s in stamps if s]
        return min(stamps) if stamps else 0

    @property
    def message_count(self) -> int:
        return self.ready_count + self.paged_count

    def __repr__(self) -> str:
        return f"Queue({self.name!r}, ready={self.ready_count}, unacked={self.unacked_count})"
