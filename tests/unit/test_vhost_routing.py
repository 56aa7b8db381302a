"""Routing through the vhost: exchange redeclares, x-delayed-message held on the broker's clock,
exchange-to-exchange bindings and alternates end to end (the exchange rules themselves are in
test_exchange.py, topic matching in test_topic.py)."""

from __future__ import annotations

import pytest

from ferrymq.errors import AccessRefused, CommandInvalid, PreconditionFailed
from tests.support.core import new_broker, open_channel, publish


def test_vhost_redeclare_with_other_type_fails_and_unknown_type_is_command_invalid():
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("e", "fanout", durable=True)
    with pytest.raises(PreconditionFailed, match="received 'direct' but current is 'fanout'"):
        vh.declare_exchange("e", "direct", durable=True)
    with pytest.raises(PreconditionFailed, match="durable"):
        vh.declare_exchange("e", "fanout", durable=False)
    with pytest.raises(CommandInvalid):
        vh.declare_exchange("f", "bogus")
    assert "f" not in vh.exchanges
    with pytest.raises(AccessRefused):
        vh.declare_exchange("amq.mine", "direct")


# --- x-delayed-message through the vhost -----------------------------------------------------------


def delayed_setup(inner: str = "direct"):
    broker, clock = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_exchange("delayed", "x-delayed-message", arguments={"x-delayed-type": inner})
    vh.declare_queue("q", connection=None)
    vh.bind("q", "delayed", "k", None, to_exchange=False, connection=None)
    return broker, clock, vh, open_channel(broker)


def bodies(vh, queue: str = "q") -> list[bytes]:
    return [e.msg.body for e in vh.queues[queue].ready_entries()]


def test_delayed_message_is_held_until_clock_passes_delay_and_tick_runs():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "later", "k", "delayed", headers={"x-delay": 1000})
    assert bodies(vh) == []
    assert broker.next_deadline_ms() == clock.monotonic_ms() + 1000
    clock.advance(999)
    broker.tick()
    assert bodies(vh) == []
    clock.advance(1)
    assert bodies(vh) == []  # time alone does nothing: the tick routes
    broker.tick()
    assert bodies(vh) == [b"later"]
    assert len(vh.delayed) == 0 and broker.next_deadline_ms() is None


def test_delayed_messages_come_out_in_due_order():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "slow", "k", "delayed", headers={"x-delay": 300})
    publish(ch, "fast", "k", "delayed", headers={"x-delay": 100})
    publish(ch, "tie", "k", "delayed", headers={"x-delay": 300})
    clock.advance(300)
    broker.tick()
    assert bodies(vh) == [b"fast", b"slow", b"tie"]


@pytest.mark.parametrize("headers", [None, {}, {"x-delay": 0}, {"x-delay": -5}, {"x-delay": True}])
def test_delayed_exchange_without_positive_int_delay_routes_now(headers):
    _, _, vh, ch = delayed_setup()
    publish(ch, "now", "k", "delayed", headers=headers)
    assert bodies(vh) == [b"now"]


def test_delayed_message_still_routes_with_inner_type_after_delay():
    broker, clock, vh, ch = delayed_setup("direct")
    publish(ch, "miss", "other", "delayed", headers={"x-delay": 10})
    clock.advance(10)
    broker.tick()
    assert bodies(vh) == []


def test_delayed_message_to_deleted_exchange_is_dropped_on_tick():
    broker, clock, vh, ch = delayed_setup()
    publish(ch, "m", "k", "delayed", headers={"x-delay": 10})
    vh.delete_exchange("delayed")
    clock.advance(10)
    broker.tick()
    assert bodies(vh) == [] and len(vh.delayed) == 0


# --- routing through the vhost -------------------------------------------------------------------


def test_vhost_publish_through_e2e_binding_and_alternate():
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    ch = open_channel(broker)
    vh.declare_exchange("ae", "fanout")
    vh.declare_exchange("src", "topic", arguments={"alternate-exchange": "ae"})
    vh.declare_exchange("mid", "direct")
    for q in ("q", "lost"):
        vh.declare_queue(q, connection=None)
    vh.bind("mid", "src", "a.#", None, to_exchange=True, connection=None)
    vh.bind("q", "mid", "a.b", None, to_exchange=False, connection=None)
    vh.bind("lost", "ae", "", None, to_exchange=False, connection=None)
    publish(ch, "hit", "a.b", "src")
    publish(ch, "nomatch", "z", "src")
    assert bodies(vh, "q") == [b"hit"]
    assert bodies(vh, "lost") == [b"nomatch"]
