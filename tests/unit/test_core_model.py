"""A stateful model test of the core: one broker, a few channels, and queues with TTL,
max-length (drop-head), a delivery limit and a DLX, and a leased queue (x-delivery-lease) whose
leases are extended, released and left to expire, with late settles of taken-back tags.

Every published message carries a unique body. After every step each body must be in exactly one
place: acked, ready in some queue, unacked on exactly one channel, dead-lettered into "dead", or
lost by policy (drop-head / expiry on a queue without a DLX, or rejected there) - and the counts
the queues keep must agree. Hypothesis prints the failing step sequence, so failures replay.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ferrymq.core.channel import Channel
from ferrymq.core.lease import LEASE_EXCHANGE
from tests.support.core import msg, new_broker, open_channel, publish

N_CHANNELS = 3
PUBLISH_TO = ("plain", "ttl", "capped", "leased")
CONSUME_FROM = ("plain", "ttl", "capped", "leased", "dead")
TTL_MS = 500
CAPPED_TTL_MS = 700
LEASE_MS = 300

CHANNEL = st.integers(0, N_CHANNELS - 1)


class CoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.broker, self.clock = new_broker(consumer_timeout_ms=10**12)
        vh = self.vhost = self.broker.vhosts["/"]
        vh.declare_exchange("dlx", "fanout")
        vh.declare_queue("dead", connection=None)
        vh.bind("dead", "dlx", "", None, to_exchange=False, connection=None)
        vh.declare_queue("plain", connection=None)
        vh.declare_queue("ttl", connection=None, arguments={
            "x-message-ttl": TTL_MS, "x-max-length": 3, "x-overflow": "drop-head",
            "x-dead-letter-exchange": "dlx", "x-delivery-limit": 2,
        })
        vh.declare_queue("capped", connection=None, arguments={
            "x-message-ttl": CAPPED_TTL_MS, "x-max-length": 2,
        })
        vh.declare_queue("leased", connection=None, arguments={
            "x-delivery-lease": LEASE_MS, "x-delivery-limit": 2, "x-dead-letter-exchange": "dlx",
        })
        self.queues = {name: vh.queues[name] for name in CONSUME_FROM}
        self.conn = object()
        self.channels: list[Channel] = [self._open(i) for i in range(N_CHANNELS)]
        self.next_channel_number = N_CHANNELS + 1
        self.seq = 0
        self.published: dict[bytes, str] = {}  # body -> queue it was published to
        self.acked: set[bytes] = set()
        self.discarded: set[bytes] = set()  # rejected without requeue where there is no DLX

    def _open(self, number: int) -> Channel:
        return open_channel(self.broker, number + 1, self.conn)

    # --- helpers ---------------------------------------------------------------------------

    def _settled(self, ch: Channel, tag: int, multiple: bool) -> list[tuple[str, bytes]]:
        """(queue, body) of the deliveries an ack/nack with these arguments covers."""
        if not multiple:
            tags = [tag]
        elif tag == 0:
            tags = list(ch.unacked)
        else:
            tags = [t for t in ch.unacked if t <= tag]
        return [(ch.unacked[t][0].name, ch.unacked[t][1].msg.body) for t in tags]

    def _pick_tag(self, ch: Channel, index: int) -> int:
        tags = sorted(ch.unacked)
        return tags[index % len(tags)]

    def _record_dropped(self, settled: list[tuple[str, bytes]]) -> None:
        for queue, body in settled:
            if self.queues[queue].args.dead_letter_exchange is None:
                self.discarded.add(body)

    def _has_unacked(self) -> bool:
        return any(ch.unacked for ch in self.channels)

    # --- rules -----------------------------------------------------------------------------

    @rule(c=CHANNEL, queue=st.sampled_from(PUBLISH_TO), count=st.integers(1, 3))
    def publish(self, c: int, queue: str, count: int) -> None:
        for _ in range(count):
            body = f"m{self.seq}".encode()
            self.seq += 1
            self.published[body] = queue
            publish(self.channels[c], body, queue)

    @rule(c=CHANNEL, queue=st.sampled_from(CONSUME_FROM))
    def consume(self, c: int, queue: str) -> None:
        ch = self.channels[c]
        tag = f"c-{queue}"
        if tag not in ch.consumers:
            ch.consume(queue, tag)

    @rule(c=CHANNEL, queue=st.sampled_from(CONSUME_FROM))
    def cancel(self, c: int, queue: str) -> None:
        ch = self.channels[c]
        tag = f"c-{queue}"
        existed = tag in ch.consumers
        assert ch.cancel(tag) is existed

    @rule(c=CHANNEL, prefetch=st.integers(0, 3), global_=st.booleans())
    def qos(self, c: int, prefetch: int, global_: bool) -> None:
        self.channels[c].qos(prefetch, global_)

    @rule(c=CHANNEL, queue=st.sampled_from(CONSUME_FROM), no_ack=st.booleans())
    def get(self, c: int, queue: str, no_ack: bool) -> None:
        got = self.channels[c].get(queue, no_ack)
        if got is not None and no_ack:
            self.acked.add(got[2].body)

    @precondition(_has_unacked)
    @rule(c=CHANNEL, index=st.integers(0, 20), multiple=st.booleans(), everything=st.booleans())
    def ack(self, c: int, index: int, multiple: bool, everything: bool) -> None:
        ch = self.channels[c]
        if not ch.unacked:
            return
        tag = 0 if multiple and everything else self._pick_tag(ch, index)
        settled = self._settled(ch, tag, multiple)
        ch.ack(tag, multiple)
        self.acked.update(body for _, body in settled)

    @precondition(_has_unacked)
    @rule(c=CHANNEL, index=st.integers(0, 20), multiple=st.booleans(), requeue=st.booleans())
    def nack(self, c: int, index: int, multiple: bool, requeue: bool) -> None:
        ch = self.channels[c]
        if not ch.unacked:
            return
        tag = self._pick_tag(ch, index)
        settled = self._settled(ch, tag, multiple)
        ch.nack(tag, multiple, requeue)
        if not requeue:
            self._record_dropped(settled)

    @precondition(_has_unacked)
    @rule(c=CHANNEL, index=st.integers(0, 20), requeue=st.booleans())
    def reject(self, c: int, index: int, requeue: bool) -> None:
        ch = self.channels[c]
        if not ch.unacked:
            return
        tag = self._pick_tag(ch, index)
        settled = self._settled(ch, tag, False)
        ch.reject(tag, requeue)
        if not requeue:
            self._record_dropped(settled)

    @rule(c=CHANNEL)
    def recover(self, c: int) -> None:
        self.channels[c].recover()

    @rule(c=CHANNEL)
    def reopen_channel(self, c: int) -> None:
        self.broker.close_channel(self.channels[c])
        self.channels[c] = self._open(self.next_channel_number)
        self.next_channel_number += 1

    @precondition(_has_unacked)
    @rule(c=CHANNEL, index=st.integers(0, 20), everything=st.booleans(),
          ms=st.sampled_from([0, 1, LEASE_MS, 1000]))
    def lease(self, c: int, index: int, everything: bool, ms: int) -> None:
        """Extend (ms > 0) or release (0) one delivery's lease, or all of the channel's."""
        ch = self.channels[c]
        if not ch.unacked:
            return
        key = "*" if everything else str(self._pick_tag(ch, index))
        ch.publish(LEASE_EXCHANGE, key, False, msg(b"", key, LEASE_EXCHANGE, headers={"x-lease-ms": ms}))
        assert not ch.closed

    @rule(c=CHANNEL, index=st.integers(0, 20), kind=st.sampled_from(["ack", "nack", "reject", "multi"]))
    def late_settle(self, c: int, index: int, kind: str) -> None:
        """A settle of a tag its lease took back changes nothing (and closes nothing)."""
        ch = self.channels[c]
        late = [t for t in range(1, ch.next_tag) if t not in ch.unacked and ch._is_late(t)]
        if not late:
            return
        tag = late[index % len(late)]
        before = self._locations()
        if kind == "multi":  # a multiple ack also settles what is still held below the tag
            settled = self._settled(ch, tag, True)
            ch.ack(tag, True)
            self.acked.update(body for _, body in settled)
            before.subtract(body for _, body in settled)
        else:
            {"ack": lambda: ch.ack(tag, False), "nack": lambda: ch.nack(tag, False, False),
             "reject": lambda: ch.reject(tag, False)}[kind]()
        assert not ch.closed and not ch._is_late(tag)
        assert self._locations() == +before

    @rule(ms=st.sampled_from([0, 1, 100, LEASE_MS, TTL_MS - 1, TTL_MS, CAPPED_TTL_MS, 1000]))
    def advance_and_tick(self, ms: int) -> None:
        self.clock.advance(ms)
        self.broker.tick()

    # --- invariants ------------------------------------------------------------------------

    def _locations(self) -> Counter[bytes]:
        places: Counter[bytes] = Counter()
        for queue in self.queues.values():
            places.update(e.msg.body for e in queue.ready_entries())
        for ch in self.channels:
            places.update(entry.msg.body for _, entry, _, _ in ch.unacked.values())
        return places

    @invariant()
    def every_message_is_in_exactly_one_place(self) -> None:
        for ch in self.channels:
            ch.outbox.clear()
        places = self._locations()
        doubled = {body: n for body, n in places.items() if n > 1}
        assert not doubled, f"messages in more than one place: {doubled}"
        located = set(places)
        assert located <= set(self.published), "a message nobody published"
        assert not (located & self.acked), f"acked yet still present: {located & self.acked}"
        assert not (located & self.discarded), f"discarded yet present: {located & self.discarded}"
        assert not (self.acked & self.discarded)
        lost = set(self.published) - located - self.acked - self.discarded
        # Only the DLX-less capped queue may lose messages, and its counters must say so.
        assert all(self.published[b] == "capped" for b in lost), f"lost outside 'capped': {lost}"
        capped = self.queues["capped"].counters
        assert len(lost) == capped["dropped"] + capped["expired"], (
            f"lost {sorted(lost)} but capped counters {capped}"
        )
        assert capped["dead_lettered"] == 0

    @invariant()
    def dead_letters_balance(self) -> None:
        ttl, leased = self.queues["ttl"].counters, self.queues["leased"].counters
        dead = self.queues["dead"]
        assert dead.counters["published"] == ttl["dead_lettered"] + leased["dead_lettered"]
        assert ttl["dropped"] + ttl["expired"] <= ttl["dead_lettered"]
        for entry in dead.ready_entries():
            source = self.published[entry.msg.body]
            assert source in ("ttl", "leased")
            assert entry.msg.props.headers["x-death"][0]["queue"] == source

    @invariant()
    def unacked_counts_agree(self) -> None:
        per_queue: Counter[str] = Counter()
        per_consumer: Counter[int] = Counter()
        for ch in self.channels:
            assert ch.unacked_count == len(ch.unacked)
            assert not ch.closed
            if ch.leases is not None:
                assert set(ch.leases.deadlines) <= set(ch.unacked), "a lease on a settled delivery"
            for queue, _, consumer, _ in ch.unacked.values():
                per_queue[queue.name] += 1
                if consumer is not None:
                    per_consumer[id(consumer)] += 1
                    assert consumer.channel is ch
            for consumer in ch.consumers.values():
                assert consumer in consumer.queue.consumers
                assert consumer.unacked == per_consumer[id(consumer)]
        for name, queue in self.queues.items():
            assert queue.unacked_count == per_queue[name], name
            assert queue.ready_count == len(list(queue.ready_entries())), name
            assert all(c.channel in self.channels for c in queue.consumers), name

    @invariant()
    def ready_messages_wait_only_for_credit(self) -> None:
        for name, queue in self.queues.items():
            if queue.ready_count:
                assert not any(c.has_credit() for c in queue.consumers), (
                    f"{name} holds {queue.ready_count} ready messages while a consumer has credit"
                )


CoreModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestCoreModel = CoreModel.TestCase


def test_delivery_limit_dead_letter_is_counted_once():
    """Regression: requeue past x-delivery-limit counted dead_lettered in the queue and the vhost."""
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("dlx", "fanout")
    vh.declare_queue("dead", connection=None)
    vh.bind("dead", "dlx", "", None, to_exchange=False, connection=None)
    q = vh.declare_queue("q", connection=None,
                         arguments={"x-delivery-limit": 1, "x-dead-letter-exchange": "dlx"})
    ch = open_channel(broker)
    publish(ch, "m", "q")
    ch.consume("q", "c")
    ch.recover()  # second delivery
    ch.recover()  # over the limit: dead-lettered
    assert [e.msg.body for e in vh.queues["dead"].ready_entries()] == [b"m"]
    assert q.counters["dead_lettered"] == 1
