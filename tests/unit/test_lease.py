"""Per-delivery leases (x-delivery-lease, amq.ferrymq.lease) in the pure core, on a manual clock."""

from __future__ import annotations

import pytest

from ferrymq.core.channel import CLOSE, DELIVER
from ferrymq.core.lease import LEASE_EXCHANGE
from ferrymq.core.policy import PolicyError, make_policy, validate_definition
from ferrymq.errors import AccessRefused, PreconditionFailed
from tests.support.core import confirms, deliveries, msg, new_broker, open_channel, publish

LEASE_MS = 1000


def leased_queue(broker, name="q", lease_ms=LEASE_MS, **extra):
    args = {"x-delivery-lease": lease_ms, **extra} if lease_ms is not None else extra
    return broker.vhosts["/"].declare_queue(name, connection=None, arguments=args)


def tick(broker, clock, ms):
    clock.advance(ms)
    broker.tick()


def lease(ch, key, ms):
    """Extend (ms > 0) or release (0) by publishing to amq.ferrymq.lease, as a client does."""
    ch.publish(LEASE_EXCHANGE, str(key), False, msg(b"", str(key), LEASE_EXCHANGE,
                                                   headers={"x-lease-ms": ms}))


def setup(n=1, **kw):
    broker, clock = new_broker()
    q = leased_queue(broker, **kw)
    ch = open_channel(broker)
    for i in range(n):
        publish(ch, f"m{i}")
    ch.consume("q", "c")
    return broker, clock, q, ch, deliveries(ch)


def test_delivery_held_past_its_lease_is_requeued_and_redelivered_channel_open():
    broker, clock, q, ch, first = setup()
    assert [(d[1], d[2]) for d in first] == [(1, False)]
    tick(broker, clock, LEASE_MS - 1)
    assert q.unacked_count == 1 and not ch.outbox
    tick(broker, clock, 1)
    (again,) = deliveries(ch)  # the only consumer has credit again: it gets the message back
    assert again[1:] == (2, True, b"m0")
    assert not ch.closed and broker.counters["leases_expired"] == 1
    assert q.counters["redelivered"] == 1


def test_expired_message_goes_back_to_its_original_position():
    broker, clock = new_broker()
    q = leased_queue(broker)
    ch = open_channel(broker)
    publish(ch, "m0")
    assert ch.get("q", no_ack=False)[2].body == b"m0"
    publish(ch, "m1")
    tick(broker, clock, LEASE_MS)
    assert [e.msg.body for e in q.ready_entries()] == [b"m0", b"m1"]
    _tag, redelivered, m, _ = ch.get("q", no_ack=False)
    assert (m.body, redelivered) == (b"m0", True)


def test_extension_keeps_the_delivery_until_the_new_deadline():
    broker, clock, q, ch, _ = setup()
    tick(broker, clock, 900)
    lease(ch, 1, 5000)  # from now: ends at 5900
    tick(broker, clock, 4999)
    assert 1 in ch.unacked and q.ready_count == 0
    tick(broker, clock, 1)
    assert 1 not in ch.unacked and deliveries(ch)[0][2] is True


def test_release_with_zero_returns_the_delivery_at_once():
    broker, _, _q, ch, _ = setup()
    lease(ch, 1, 0)
    (again,) = deliveries(ch)
    assert again[1:] == (2, True, b"m0")
    assert broker.counters["leases_released"] == 1


def test_star_extends_every_unacked_delivery_of_the_channel():
    broker, clock, _q, ch, first = setup(3)
    assert len(first) == 3
    tick(broker, clock, 500)
    lease(ch, "*", 2000)
    tick(broker, clock, 1999)
    assert sorted(ch.unacked) == [1, 2, 3]
    tick(broker, clock, 1)
    assert [d[3] for d in deliveries(ch)] == [b"m0", b"m1", b"m2"]


def test_star_release_returns_everything_and_unknown_tags_are_ignored():
    _broker, _, q, ch, _ = setup(2)
    ch.confirm_select()
    lease(ch, 99, 5000)  # no such delivery: ignored, still confirmed
    lease(ch, "*", 0)
    assert confirms(ch) == [(1, True), (2, True)]
    assert q.ready_count == 0 and sorted(ch.unacked) == [3, 4]  # redelivered to the consumer


def test_late_ack_nack_reject_of_a_taken_back_tag_is_ignored_and_counted():
    broker, clock, q, ch, _ = setup(3)
    tick(broker, clock, LEASE_MS)
    assert sorted(ch.unacked) == [4, 5, 6]
    ch.ack(1, False)
    ch.nack(2, False, True)
    ch.reject(3, False)
    assert not ch.closed and not any(e[0] == CLOSE for e in ch.outbox)
    assert broker.counters["late_settles_ignored"] == 3
    assert q.ready_count == 0 and q.unacked_count == 3 and q.counters["acked"] == 0
    with pytest.raises(PreconditionFailed, match="unknown delivery tag 1"):
        ch.ack(1, False)  # once is late, twice is a double ack


def test_late_multiple_ack_naming_a_taken_back_tag_settles_the_rest():
    broker, clock, q, ch, _ = setup(1)
    tick(broker, clock, LEASE_MS)  # tag 1 taken back, redelivered as tag 2
    publish(ch, "m1")
    ch.ack(1, True)  # late: covers nothing still held below it
    assert sorted(ch.unacked) == [2, 3]
    ch.ack(3, True)
    assert not ch.unacked and q.counters["acked"] == 2
    assert broker.counters["late_settles_ignored"] == 1


def test_repeated_expiries_count_towards_the_delivery_limit_and_dead_letter():
    broker, clock = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("dlx", "fanout")
    vh.declare_queue("dead", connection=None)
    vh.bind("dead", "dlx", "", None, to_exchange=False, connection=None)
    leased_queue(broker, **{"x-delivery-limit": 2, "x-dead-letter-exchange": "dlx"})
    ch = open_channel(broker)
    publish(ch, "m")
    ch.consume("q", "c")
    counts = []
    for _ in range(3):
        (d,) = [e for e in ch.outbox if e[0] == DELIVER]
        counts.append((d[6].props.headers or {}).get("x-delivery-count"))
        ch.outbox.clear()
        tick(broker, clock, LEASE_MS)
    assert counts == [None, 1, 2]
    (dead,) = vh.queues["dead"].ready_entries()
    assert dead.msg.props.headers["x-death"][0]["reason"] == "delivery_limit"


def test_without_the_argument_nothing_expires_and_no_lease_state_exists():
    broker, clock, _, ch, _ = setup(lease_ms=None)
    tick(broker, clock, 10 * LEASE_MS)
    assert list(ch.unacked) == [1] and ch.leases is None and not broker.leased


def test_a_lease_request_can_lease_a_delivery_of_a_queue_without_the_argument():
    broker, clock, _, ch, _ = setup(lease_ms=None)
    lease(ch, 1, 300)
    tick(broker, clock, 300)
    assert deliveries(ch)[0][1:] == (2, True, b"m0")


def test_leased_deliveries_are_exempt_from_the_consumer_timeout():
    broker, clock = new_broker(consumer_timeout_ms=2000)
    leased_queue(broker)
    ch = open_channel(broker)
    publish(ch, "m")
    ch.consume("q", "c")
    for _ in range(5):  # 5 s in all, well past the 2 s consumer timeout
        lease(ch, "*", LEASE_MS)
        tick(broker, clock, LEASE_MS - 1)
    assert not ch.closed and 1 in ch.unacked


def test_next_deadline_is_the_earliest_live_lease_stale_entries_skipped():
    broker, clock = new_broker(consumer_timeout_ms=10**9)
    t0 = clock.monotonic_ms()
    leased_queue(broker, lease_ms=500)
    ch = open_channel(broker)
    publish(ch, "a")
    publish(ch, "b")
    ch.consume("q", "c")
    assert broker.next_deadline_ms() == t0 + 500
    ch.ack(1, False)
    lease(ch, 2, 3000)
    assert ch.leases is not None and ch.leases.next_deadline_ms() == t0 + 3000
    assert broker.next_deadline_ms() == t0 + 1000  # the periodic consumer-timeout check comes first


def test_acked_leases_leave_no_state_behind():
    broker, _clock = new_broker()
    leased_queue(broker)
    ch = open_channel(broker)
    ch.consume("q", "c")
    for i in range(1000):
        publish(ch, f"m{i}")
        ch.ack(deliveries(ch)[0][1], i % 2 == 0)
    assert ch.leases is not None and not ch.leases.deadlines
    assert len(ch.leases._heap) <= 2 * 64 + 1  # the heap is rebuilt, not grown without bound


def test_basic_get_deliveries_are_leased_too():
    broker, clock = new_broker()
    q = leased_queue(broker)
    ch = open_channel(broker)
    publish(ch, "m")
    ch.get("q", no_ack=False)
    tick(broker, clock, LEASE_MS)
    assert q.ready_count == 1 and not ch.unacked


def test_no_ack_deliveries_are_not_leased():
    broker, clock = new_broker()
    leased_queue(broker)
    ch = open_channel(broker)
    ch.consume("q", "c", no_ack=True)
    publish(ch, "m")
    tick(broker, clock, LEASE_MS)
    assert len(deliveries(ch)) == 1 and ch.leases is None


def test_lease_in_tx_applies_at_commit_and_late_ack_in_tx_is_accepted():
    broker, _clock, _q, ch, _ = setup()
    ch.tx_select()
    lease(ch, 1, 0)
    assert 1 in ch.unacked
    ch.tx_commit()
    assert 1 not in ch.unacked and 2 in ch.unacked
    ch.ack(1, False)  # late, in tx: checked now, ignored at commit
    ch.tx_commit()
    assert broker.counters["late_settles_ignored"] == 1


def test_channel_close_drops_its_leases():
    broker, clock, q, ch, _ = setup()
    broker.close_channel(ch)
    assert ch not in broker.leased and q.ready_count == 1
    tick(broker, clock, LEASE_MS)
    assert q.ready_count == 1


@pytest.mark.parametrize("value, text", [
    (0, "{value_zero,0}"), (-5, "{value_negative,-5}"), ("10", "{unacceptable_type,longstr}"),
    (True, "{unacceptable_type,bool}"), (10**12, "{value_too_large,1000000000000,604800000}"),
])
def test_bad_x_delivery_lease_is_precondition_failed(value, text):
    broker, _ = new_broker()
    with pytest.raises(PreconditionFailed) as info:
        leased_queue(broker, lease_ms=value)
    assert str(info.value).endswith(f"invalid arg 'x-delivery-lease' for queue 'q' in vhost '/': {text}")


@pytest.mark.parametrize("key, headers, text", [
    ("1", None, "needs header 'x-lease-ms'"),
    ("1", {"x-lease-ms": -1}, "got -1"),
    ("1", {"x-lease-ms": "5"}, "got '5'"),
    ("tag", {"x-lease-ms": 5}, "got 'tag'"),
])
def test_malformed_lease_request_is_one_precondition_failed(key, headers, text):
    _broker, _, _, ch, _ = setup()
    with pytest.raises(PreconditionFailed, match=text):
        ch.publish(LEASE_EXCHANGE, key, False, msg(b"", key, LEASE_EXCHANGE, headers=headers))


def test_lease_exchange_exists_in_every_vhost_and_refuses_bindings():
    broker, _ = new_broker()
    vh = broker.add_vhost("other")
    assert vh.get_exchange(LEASE_EXCHANGE).type == "direct"
    vh.declare_exchange(LEASE_EXCHANGE, "direct", durable=True)  # an equivalent redeclare is fine
    vh.declare_queue("q", connection=None)
    with pytest.raises(AccessRefused, match=r"amq\.ferrymq\.lease"):
        vh.bind("q", LEASE_EXCHANGE, "1", None, to_exchange=False, connection=None)


def test_policy_sets_the_lease_and_the_smaller_value_wins():
    broker, _clock = new_broker()
    vh = broker.vhosts["/"]
    q = leased_queue(broker, lease_ms=5000)
    vh.set_policy(make_policy("/", "p", {"pattern": "^q$", "definition": {"delivery-lease": 200}}))
    assert q.lease_ms == 200
    vh.clear_policy("p")
    assert q.lease_ms == 5000
    with pytest.raises(PolicyError, match="not a valid delivery lease"):
        validate_definition({"delivery-lease": 0})


def test_set_lease_is_the_front_end_api_and_says_how_many_it_touched():
    _, _, q, ch, _ = setup(2)
    assert ch.set_lease(7, 100) == 0
    assert ch.set_lease(None, 5000) == 2
    assert ch.set_lease(1, 0) == 1 and q.counters["requeued"] == 1
