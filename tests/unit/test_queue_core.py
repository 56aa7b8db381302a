"""The core queue engine, driven through channels on a manual clock."""

from __future__ import annotations

import pytest

from ferrymq.core.channel import CANCEL, CLOSE, RETURN
from ferrymq.core.properties import Long
from ferrymq.errors import AccessRefused, NotAllowed, PreconditionFailed, ResourceLocked
from tests.support.core import (
    confirms,
    deliveries,
    new_broker,
    open_channel,
    publish,
)


def declare(broker, name="q", conn=None, **kw):
    return broker.vhosts["/"].declare_queue(name, connection=conn, **kw)


def test_publish_then_consume_delivers_in_order():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    for i in range(3):
        publish(ch, f"m{i}")
    ch.consume("q", "c1")
    assert [d[3] for d in deliveries(ch)] == [b"m0", b"m1", b"m2"]


def test_consumers_share_messages_round_robin():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.consume("q", "a")
    ch.consume("q", "b")
    for i in range(4):
        publish(ch, str(i))
    assert [d[0] for d in deliveries(ch)] == ["a", "b", "a", "b"]


def test_prefetch_limits_unacked_per_consumer_and_ack_frees_credit():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.qos(2, False)
    ch.consume("q", "c")
    for i in range(5):
        publish(ch, str(i))
    got = deliveries(ch)
    assert [d[3] for d in got] == [b"0", b"1"]
    ch.ack(got[1][1], True)
    assert [d[3] for d in deliveries(ch)] == [b"2", b"3"]


def test_global_prefetch_is_shared_by_the_channels_consumers():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "a")
    declare(broker, "b")
    ch.qos(3, True)
    ch.consume("a", "ca")
    ch.consume("b", "cb")
    for i in range(3):
        publish(ch, f"a{i}", "a")
        publish(ch, f"b{i}", "b")
    assert len(deliveries(ch)) == 3


def test_unknown_delivery_tag_is_precondition_failed():
    broker, _ = new_broker()
    ch = open_channel(broker)
    with pytest.raises(PreconditionFailed, match="unknown delivery tag 5"):
        ch.ack(5, False)


def test_nack_requeue_returns_message_to_its_original_position_redelivered():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.qos(1, False)
    for i in range(3):
        publish(ch, str(i))
    ch.consume("q", "c")
    (first,) = deliveries(ch)
    ch.nack(first[1], False, True)
    (again,) = deliveries(ch)
    assert again[3] == b"0" and again[2] is True


def test_requeue_of_many_keeps_publish_order():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    for i in range(4):
        publish(ch, str(i))
    ch.consume("q", "c")
    got = deliveries(ch)
    ch.cancel("c")
    ch.nack(got[2][1], False, True)
    ch.nack(got[0][1], False, True)
    ch.recover()
    q = broker.vhosts["/"].queues["q"]
    assert [e.msg.body for e in q.ready_entries()] == [b"0", b"1", b"2", b"3"]


def test_reject_without_requeue_dead_letters_with_x_death():
    broker, _ = new_broker()
    ch = open_channel(broker)
    vh = broker.vhosts["/"]
    vh.declare_exchange("dlx", "fanout")
    declare(broker, "dead")
    vh.bind("dead", "dlx", "", None, to_exchange=False, connection=None)
    declare(broker, "q", arguments={"x-dead-letter-exchange": "dlx"})
    publish(ch, "m")
    ch.consume("q", "c")
    (d,) = deliveries(ch)
    ch.reject(d[1], False)
    (entry,) = list(vh.queues["dead"].ready_entries())
    headers = entry.msg.props.headers
    death = headers["x-death"][0]
    assert death["reason"] == "rejected" and death["queue"] == "q" and death["count"] == 1
    assert isinstance(death["count"], Long)  # RabbitMQ writes the count as a long ('l')
    assert death["routing-keys"] == ["q"] and death["exchange"] == ""
    assert headers["x-first-death-reason"] == "rejected"
    assert headers["x-first-death-queue"] == "q"


def test_repeated_death_in_same_queue_increments_count():
    broker, _ = new_broker()
    ch = open_channel(broker)
    vh = broker.vhosts["/"]
    declare(broker, "q", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q"})
    publish(ch, "m")
    ch.consume("q", "c")
    for _ in range(2):
        (d,) = deliveries(ch)
        ch.reject(d[1], False)
    (d,) = deliveries(ch)
    q = vh.queues["q"]
    assert q.counters["dead_lettered"] == 2
    assert d[3] == b"m"


def test_message_ttl_expires_at_head_and_dead_letters_as_expired():
    broker, clock = new_broker()
    ch = open_channel(broker)
    vh = broker.vhosts["/"]
    declare(broker, "dead")
    declare(broker, "q", arguments={"x-message-ttl": 1000, "x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": "dead"})
    publish(ch, "m")
    assert broker.next_deadline_ms() == clock.monotonic_ms() + 1000
    clock.advance(1000)
    broker.tick()
    assert vh.queues["q"].ready_count == 0
    (entry,) = list(vh.queues["dead"].ready_entries())
    assert entry.msg.props.headers["x-death"][0]["reason"] == "expired"


def test_per_message_expiration_is_kept_as_original_expiration():
    broker, clock = new_broker()
    ch = open_channel(broker)
    vh = broker.vhosts["/"]
    declare(broker, "dead")
    declare(broker, "q", arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    publish(ch, "m", expiration="50")
    clock.advance(60)
    broker.tick()
    (entry,) = list(vh.queues["dead"].ready_entries())
    assert entry.msg.props.expiration is None
    assert entry.msg.props.headers["x-death"][0]["original-expiration"] == "50"


def test_zero_ttl_message_is_delivered_only_to_a_waiting_consumer():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", arguments={"x-message-ttl": 0})
    publish(ch, "lost")
    ch.consume("q", "c")
    publish(ch, "kept")
    assert [d[3] for d in deliveries(ch)] == [b"kept"]


def test_max_length_drop_head_drops_oldest():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", arguments={"x-max-length": 2})
    for i in range(4):
        publish(ch, str(i))
    q = broker.vhosts["/"].queues["q"]
    assert [e.msg.body for e in q.ready_entries()] == [b"2", b"3"]


def test_max_length_reject_publish_nacks_confirmed_publisher():
    broker, _ = new_broker()
    ch = open_channel(broker)
    ch.confirm_select()
    declare(broker, "q", arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
    publish(ch, "a")
    publish(ch, "b")
    assert confirms(ch) == [(1, True), (2, False)]


def test_max_length_bytes_counts_bodies():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", arguments={"x-max-length-bytes": 5})
    publish(ch, "abc")
    publish(ch, "def")
    q = broker.vhosts["/"].queues["q"]
    assert [e.msg.body for e in q.ready_entries()] == [b"def"]


def test_reject_publish_dlx_dead_letters_the_refused_message():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "dead")
    declare(broker, "q", arguments={"x-max-length": 1, "x-overflow": "reject-publish-dlx",
                                    "x-dead-letter-exchange": "", "x-dead-letter-routing-key": "dead"})
    publish(ch, "a")
    publish(ch, "b")
    (entry,) = list(broker.vhosts["/"].queues["dead"].ready_entries())
    assert entry.msg.body == b"b"
    assert entry.msg.props.headers["x-death"][0]["reason"] == "maxlen"


def test_priority_queue_delivers_highest_priority_first():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", arguments={"x-max-priority": 5})
    publish(ch, "low", priority=1)
    publish(ch, "none")
    publish(ch, "high", priority=9)
    publish(ch, "mid", priority=3)
    ch.consume("q", "c")
    assert [d[3] for d in deliveries(ch)] == [b"high", b"mid", b"low", b"none"]


def test_delivery_limit_dead_letters_after_too_many_redeliveries():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "dead")
    declare(broker, "q", arguments={"x-delivery-limit": 1, "x-dead-letter-exchange": "",
                                    "x-dead-letter-routing-key": "dead"})
    publish(ch, "m")
    ch.consume("q", "c")
    (d,) = deliveries(ch)
    ch.nack(d[1], False, True)
    (d,) = ch.outbox
    assert d[6].props.headers["x-delivery-count"] == 1
    ch.outbox.clear()
    ch.nack(d[2], False, True)
    assert deliveries(ch) == []
    (entry,) = list(broker.vhosts["/"].queues["dead"].ready_entries())
    assert entry.msg.props.headers["x-death"][0]["reason"] == "delivery_limit"


def test_quorum_queue_redeliveries_carry_x_delivery_count_as_rabbitmq_does():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "qq", durable=True, arguments={"x-queue-type": "quorum"})
    declare(broker, "classic")
    publish(ch, "m", routing_key="qq")
    publish(ch, "m", routing_key="classic")
    ch.outbox.clear()
    ch.consume("qq", "c")
    ch.consume("classic", "k")
    first = {e[1]: e for e in ch.outbox}
    assert all("x-delivery-count" not in (e[6].props.headers or {}) for e in first.values())
    ch.outbox.clear()
    for e in first.values():
        ch.nack(e[2], False, True)
    again = {e[1]: e for e in ch.outbox}
    count = again["c"][6].props.headers["x-delivery-count"]
    assert count == 1 and isinstance(count, Long)
    assert again["k"][3] and "x-delivery-count" not in (again["k"][6].props.headers or {})  # classic


def test_consumer_timeout_closes_channel_with_406_and_requeues():
    broker, clock = new_broker(consumer_timeout_ms=5000)
    ch = open_channel(broker)
    declare(broker)
    publish(ch, "m")
    ch.consume("q", "c")
    deliveries(ch)
    clock.advance(5000)
    broker.tick()
    (effect,) = ch.outbox
    assert effect[0] == CLOSE and effect[1] == 406
    assert "delivery acknowledgement on channel 1 timed out" in effect[2]
    broker.close_channel(ch)
    assert broker.vhosts["/"].queues["q"].ready_count == 1


def test_queue_x_expires_deletes_unused_queue():
    broker, clock = new_broker()
    declare(broker, "q", arguments={"x-expires": 1000})
    clock.advance(999)
    broker.tick()
    assert "q" in broker.vhosts["/"].queues
    clock.advance(1)
    broker.tick()
    assert "q" not in broker.vhosts["/"].queues


def test_exclusive_consumer_refuses_others_with_403():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.consume("q", "a", exclusive=True)
    with pytest.raises(AccessRefused, match="in exclusive use"):
        ch.consume("q", "b")


def test_single_active_consumer_fails_over_to_next():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", arguments={"x-single-active-consumer": True})
    ch.consume("q", "a")
    ch.consume("q", "b")
    publish(ch, "1")
    publish(ch, "2")
    assert [d[0] for d in deliveries(ch)] == ["a", "a"]
    ch.cancel("a")
    publish(ch, "3")
    assert [d[0] for d in deliveries(ch)] == ["b"]


def test_consumer_priority_prefers_higher_priority_with_credit():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.qos(1, False)
    ch.consume("q", "low", arguments={"x-priority": 1})
    ch.consume("q", "high", arguments={"x-priority": 10})
    publish(ch, "1")
    publish(ch, "2")
    publish(ch, "3")
    assert [d[0] for d in deliveries(ch)] == ["high", "low"]


def test_auto_delete_queue_goes_when_last_consumer_cancels():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker, "q", auto_delete=True)
    ch.consume("q", "c")
    ch.cancel("c")
    assert "q" not in broker.vhosts["/"].queues


def test_exclusive_queue_is_locked_to_its_connection_and_deleted_with_it():
    broker, _ = new_broker()
    owner, other = object(), object()
    declare(broker, "q", conn=owner, exclusive=True)
    with pytest.raises(ResourceLocked):
        declare(broker, "q", conn=other, exclusive=True)
    broker.connection_closed(owner)
    assert "q" not in broker.vhosts["/"].queues


def test_server_named_queue_gets_amq_gen_prefix():
    broker, _ = new_broker()
    q = declare(broker, "")
    assert q.name.startswith("amq.gen-") and len(q.name) == len("amq.gen-") + 22


def test_redeclare_with_different_arguments_is_inequivalent():
    broker, _ = new_broker()
    declare(broker, "q", arguments={"x-max-length": 5})
    text = "inequivalent arg 'x-max-length' for queue 'q' in vhost '/': received '6' but current is '5'"
    with pytest.raises(PreconditionFailed, match=text):
        declare(broker, "q", arguments={"x-max-length": 6})
    with pytest.raises(PreconditionFailed, match="inequivalent arg 'durable'"):
        declare(broker, "q", durable=True, arguments={"x-max-length": 5})


def test_reserved_queue_name_prefix_is_refused():
    broker, _ = new_broker()
    with pytest.raises(AccessRefused, match=r"reserved prefix 'amq\.\*'"):
        declare(broker, "amq.mine")


def test_delete_if_unused_and_if_empty_are_preconditions():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    publish(ch, "m")
    vh = broker.vhosts["/"]
    with pytest.raises(PreconditionFailed, match="not empty"):
        vh.delete_queue("q", connection=None, if_empty=True)
    ch.consume("q", "c")
    with pytest.raises(PreconditionFailed, match="in use"):
        vh.delete_queue("q", connection=None, if_unused=True)


def test_deleting_a_queue_cancels_its_consumers_with_notification():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.consume("q", "c")
    broker.vhosts["/"].delete_queue("q", connection=None)
    assert (CANCEL, "c") in ch.outbox


def test_basic_get_takes_head_and_reports_remaining():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    publish(ch, "a")
    publish(ch, "b")
    tag, redelivered, m, remaining = ch.get("q", no_ack=False)
    assert (m.body, remaining, redelivered) == (b"a", 1, False)
    ch.ack(tag, False)
    assert ch.get("q", no_ack=True)[2].body == b"b"
    assert ch.get("q", no_ack=True) is None


def test_closing_a_channel_requeues_unacked_in_order():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    for i in range(3):
        publish(ch, str(i))
    ch.consume("q", "c")
    deliveries(ch)
    broker.close_channel(ch)
    q = broker.vhosts["/"].queues["q"]
    assert [e.msg.body for e in q.ready_entries()] == [b"0", b"1", b"2"]
    assert all(e.deliveries == 1 for e in q.ready_entries())


def test_tx_publish_is_invisible_until_commit_and_dropped_on_rollback():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.tx_select()
    publish(ch, "a")
    q = broker.vhosts["/"].queues["q"]
    assert q.ready_count == 0
    ch.tx_commit()
    assert q.ready_count == 1
    publish(ch, "b")
    ch.tx_rollback()
    ch.tx_commit()
    assert q.ready_count == 1


def test_mandatory_unroutable_publish_is_returned_before_its_confirm():
    broker, _ = new_broker()
    ch = open_channel(broker)
    ch.confirm_select()
    publish(ch, "m", routing_key="nowhere", mandatory=True)
    kinds = [e[0] for e in ch.outbox]
    assert kinds[0] == RETURN and ch.outbox[0][1:3] == (312, "NO_ROUTE")
    assert confirms(ch) == [(1, True)]


def test_reusing_a_consumer_tag_is_not_allowed():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    ch.consume("q", "c")
    with pytest.raises(NotAllowed, match="reuse consumer tag 'c'"):
        ch.consume("q", "c")


def test_direct_reply_to_routes_reply_to_waiting_channel():
    broker, _ = new_broker()
    client = open_channel(broker, 1)
    server = open_channel(broker, 2)
    declare(broker, "rpc")
    client.consume_reply_to("", no_ack=True)
    publish(client, "request", routing_key="rpc", reply_to="amq.rabbitmq.reply-to")
    server.consume("rpc", "s")
    (effect,) = server.outbox
    reply_to = effect[6].props.reply_to
    assert reply_to.startswith("amq.rabbitmq.reply-to.")
    publish(server, "response", routing_key=reply_to)
    assert [d[3] for d in deliveries(client)] == [b"response"]


def test_user_id_must_match_the_authenticated_user():
    broker, _ = new_broker()
    ch = open_channel(broker)
    declare(broker)
    with pytest.raises(PreconditionFailed, match="user_id property set to 'bob'"):
        publish(ch, "m", user_id="bob")
