"""The FIFO queue kind: message groups one-at-a-time, and the deduplication window."""

from __future__ import annotations

from ferrymq.core.fifo import FifoQueue
from tests.support.core import confirms, deliveries, new_broker, open_channel, publish


def fifo(broker, **args):
    return broker.vhosts["/"].declare_queue("f", connection=None, arguments=args)


def test_fifo_kind_is_chosen_only_for_groups_or_dedup():
    broker, _ = new_broker()
    assert isinstance(fifo(broker, **{"x-message-groups": True}), FifoQueue)
    plain = broker.vhosts["/"].declare_queue("p", connection=None)
    assert not isinstance(plain, FifoQueue)


def test_a_group_has_one_message_in_flight_and_groups_run_in_parallel():
    broker, _ = new_broker()
    ch = open_channel(broker)
    fifo(broker, **{"x-message-groups": True})
    for body, group in (("a1", "a"), ("a2", "a"), ("b1", "b"), ("n1", None), ("b2", "b")):
        publish(ch, body, "f", headers={"x-group-id": group} if group else None)
    ch.consume("f", "c")
    first = deliveries(ch)
    assert [d[3] for d in first] == [b"a1", b"b1", b"n1"]
    ch.ack(first[0][1], False)
    assert [d[3] for d in deliveries(ch)] == [b"a2"]
    ch.ack(first[1][1], False)
    assert [d[3] for d in deliveries(ch)] == [b"b2"]


def test_requeued_group_message_is_redelivered_before_the_rest_of_its_group():
    broker, _ = new_broker()
    ch = open_channel(broker)
    fifo(broker, **{"x-message-groups": True})
    publish(ch, "a1", "f", headers={"x-group-id": "a"})
    publish(ch, "a2", "f", headers={"x-group-id": "a"})
    ch.consume("f", "c")
    (d,) = deliveries(ch)
    ch.nack(d[1], False, True)
    (again,) = deliveries(ch)
    assert again[3] == b"a1" and again[2] is True


def test_basic_get_skips_a_locked_group():
    broker, _ = new_broker()
    ch = open_channel(broker)
    fifo(broker, **{"x-message-groups": True})
    publish(ch, "a1", "f", headers={"x-group-id": "a"})
    publish(ch, "a2", "f", headers={"x-group-id": "a"})
    publish(ch, "b1", "f", headers={"x-group-id": "b"})
    assert ch.get("f", no_ack=False)[2].body == b"a1"
    assert ch.get("f", no_ack=False)[2].body == b"b1"
    assert ch.get("f", no_ack=False) is None


def test_duplicate_message_id_within_window_is_confirmed_but_not_enqueued():
    broker, clock = new_broker()
    ch = open_channel(broker)
    ch.confirm_select()
    q = fifo(broker, **{"x-deduplication-window": 1000})
    publish(ch, "one", "f", message_id="m-1")
    publish(ch, "dup", "f", message_id="m-1")
    publish(ch, "other", "f", headers={"x-deduplication-id": "d-2"})
    assert confirms(ch) == [(1, True), (2, True), (3, True)]
    assert [e.msg.body for e in q.ready_entries()] == [b"one", b"other"]
    assert q.counters["deduplicated"] == 1
    clock.advance(1000)
    publish(ch, "again", "f", message_id="m-1")
    assert [e.msg.body for e in q.ready_entries()] == [b"one", b"other", b"again"]
