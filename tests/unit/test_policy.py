"""Policies in the core: validation with RabbitMQ's texts, matching, combination with queue
arguments, and live application to existing queues and exchanges."""

from __future__ import annotations

import pytest

from ferrymq.core.policy import PolicyError, effective, make_policy, queue_arguments
from ferrymq.limits import PAGE_WINDOW_MESSAGES
from tests.support.core import new_broker, open_channel, publish
from tests.unit.test_queue_paging import MemoryTopology


def test_highest_priority_matching_policy_wins_and_apply_to_filters() -> None:
    pols = {p.name: p for p in (
        make_policy("/", "low", {"pattern": "^q", "definition": {"max-length": 1}}),
        make_policy("/", "high", {"pattern": "^q", "definition": {"max-length": 2}, "priority": 5}),
        make_policy("/", "ex", {"pattern": ".*", "definition": {"alternate-exchange": "ae"},
                                "priority": 9, "apply-to": "exchanges"}),
    )}
    assert effective(pols, "queue", "q1").name == "high"  # type: ignore[union-attr]
    assert effective(pols, "exchange", "q1").name == "ex"  # type: ignore[union-attr]
    assert effective(pols, "queue", "other") is None


@pytest.mark.parametrize(("definition", "reason"), [
    ({"foo": 1}, '[{&lt;&lt;"foo"&gt;&gt;,1}] are not recognised policy settings'),
    ({"message-ttl": "abc"}, '&lt;&lt;"abc"&gt;&gt; is not a valid message TTL'),
    ({"max-length": -1}, "-1 is not a valid maximum length"),
    ({"expires": 0}, "0 is not a valid queue expiry"),
    ({"overflow": "x"}, '&lt;&lt;"x"&gt;&gt; is not a valid overflow value'),
    ({}, "no policy provided"),
])
def test_bad_definitions_are_refused_with_rabbitmq_reasons(definition: dict, reason: str) -> None:
    with pytest.raises(PolicyError) as info:
        make_policy("/", "p", {"pattern": "^q", "definition": definition})
    assert str(info.value) == f"Validation failed\n\n{reason}\n"


def test_smaller_limit_wins_but_queue_argument_wins_for_overflow_and_dlx() -> None:
    policy = make_policy("/", "p", {"pattern": ".*", "definition": {
        "max-length": 5, "message-ttl": 100, "overflow": "drop-head", "dead-letter-exchange": "pol"}})
    merged = queue_arguments({"x-max-length": 3, "x-message-ttl": 1000, "x-overflow": "reject-publish",
                              "x-dead-letter-exchange": "own"}, policy)
    assert merged == {"x-max-length": 3, "x-message-ttl": 100, "x-overflow": "reject-publish",
                      "x-dead-letter-exchange": "own"}


def test_policy_on_existing_queue_drops_head_at_once_and_clearing_restores_fast_path() -> None:
    broker, _clock = new_broker()
    ch = open_channel(broker)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("q", connection=object())
    for i in range(5):
        publish(ch, str(i))
    assert queue.plain
    vhost.set_policy(make_policy("/", "p", {"pattern": "^q$", "definition": {"max-length": 2}}))
    assert (queue.message_count, queue.plain, queue.policy.name) == (2, False, "p")
    assert [e.msg.body for e in queue.ready_entries()] == [b"3", b"4"]
    vhost.clear_policy("p")
    assert (queue.plain, queue.policy) == (True, None)
    for i in range(3):
        publish(ch, str(i))
    assert queue.message_count == 5


def test_message_ttl_policy_expires_messages_published_after_it() -> None:
    broker, clock = new_broker()
    ch = open_channel(broker)
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("q", connection=object())
    vhost.set_policy(make_policy("/", "p", {"pattern": "^q$", "definition": {"message-ttl": 50}}))
    publish(ch, "a")
    clock.advance(100)
    broker.tick(clock.monotonic_ms())
    assert queue.message_count == 0 and queue.counters["expired"] == 1


def test_exchange_alternate_from_policy_unless_its_own_argument_is_set() -> None:
    broker, _ = new_broker()
    vhost = broker.vhosts["/"]
    plain = vhost.declare_exchange("e1", "direct")
    own = vhost.declare_exchange("e2", "direct", arguments={"alternate-exchange": "mine"})
    vhost.set_policy(make_policy("/", "p", {"pattern": "^e", "definition": {"alternate-exchange": "ae"},
                                            "apply-to": "exchanges"}))
    assert (plain.alternate, own.alternate) == ("ae", "mine")
    later = vhost.declare_exchange("e3", "fanout")
    assert later.alternate == "ae" and vhost.exchange_policies["e3"].name == "p"
    vhost.clear_policy("p")
    assert (plain.alternate, later.alternate) == (None, None)


def test_max_length_policy_on_a_paged_durable_queue_keeps_the_newest() -> None:
    broker, _ = new_broker(topology=MemoryTopology())
    vhost = broker.vhosts["/"]
    queue = vhost.declare_queue("q", connection=None, durable=True)
    ch = open_channel(broker)
    n = PAGE_WINDOW_MESSAGES * 2
    for i in range(n):
        publish(ch, str(i), delivery_mode=2)
    assert queue.paged_count > 0
    queue.store.write()  # type: ignore[union-attr]
    vhost.set_policy(make_policy("/", "p", {"pattern": "^q$", "definition": {"max-length": 3}}))
    assert (queue.message_count, queue.paged_count, queue.pageable) == (3, 0, False)
    assert [e.msg.body for e in queue.ready_entries()] == [str(i).encode() for i in range(n - 3, n)]
    vhost.clear_policy("p")
    assert queue.pageable


def test_excess_is_dropped_if_the_queue_was_drop_head_even_when_the_policy_sets_reject_publish() -> None:
    broker, _ = new_broker()
    ch = open_channel(broker)
    vhost = broker.vhosts["/"]
    was_drop_head = vhost.declare_queue("q1", connection=object())
    was_reject = vhost.declare_queue("q2", connection=object(), arguments={"x-overflow": "reject-publish"})
    for name in ("q1", "q2"):
        for i in range(5):
            publish(ch, str(i), routing_key=name)
    vhost.set_policy(make_policy("/", "p", {"pattern": "^q", "definition": {
        "max-length": 2, "overflow": "reject-publish"}}))
    assert (was_drop_head.message_count, was_reject.message_count) == (2, 5)
    assert was_drop_head.args.overflow == "reject-publish"


def test_expires_policy_counts_from_when_it_is_applied() -> None:
    broker, clock = new_broker()
    vhost = broker.vhosts["/"]
    vhost.declare_queue("q", connection=object())
    clock.advance(10_000)
    vhost.set_policy(make_policy("/", "p", {"pattern": "^q$", "definition": {"expires": 500}}))
    broker.tick(clock.monotonic_ms())
    assert "q" in vhost.queues
    clock.advance(600)
    broker.tick(clock.monotonic_ms())
    assert "q" not in vhost.queues
