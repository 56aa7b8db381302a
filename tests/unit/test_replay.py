"""Dead-letter replay: back to the x-death queue, persistence kept, out of the DLQ only once in."""

from __future__ import annotations

from ferrymq.core.channel import Channel
from ferrymq.core.replay import peek, replay
from ferrymq.core.vhost import VHost
from tests.support.core import deliveries, msg, new_broker, open_channel


def _dead_lettered(n: int) -> tuple[VHost, Channel]:
    broker, _ = new_broker()
    vh = broker.vhosts["/"]
    vh.declare_queue("dlq", connection=None)
    vh.declare_queue("work", connection=None, arguments={"x-dead-letter-exchange": "",
                                                         "x-dead-letter-routing-key": "dlq"})
    ch = open_channel(broker)
    for i in range(n):
        vh.publish("", "work", msg(f"m{i}", "work", delivery_mode=2))
    for _ in range(n):
        got = ch.get("work", False)
        assert got is not None
        ch.reject(got[0], False)
    return vh, ch


def test_replay_moves_dead_letters_back_to_their_queue_keeping_persistence() -> None:
    vh, _ = _dead_lettered(3)
    dlq, work = vh.queues["dlq"], vh.queues["work"]
    assert dlq.message_count == 3 and work.message_count == 0
    result = replay(vh, dlq, None)
    assert result.replayed == 3
    assert result.before == {"dlq": 3, "targets": {"work": 0}}
    assert result.after == {"dlq": 0, "targets": {"work": 3}}
    back = [e.msg for e in work.ready_entries()]
    assert [m.body for m in back] == [b"m0", b"m1", b"m2"]
    assert all(m.persistent for m in back) and back[0].props.headers["x-death"][0]["queue"] == "work"
    assert dlq.unacked_count == 0


def test_replay_count_limits_and_messages_without_x_death_stay() -> None:
    vh, _ = _dead_lettered(2)
    dlq = vh.queues["dlq"]
    vh.publish("", "dlq", msg("plain", "dlq"))
    result = replay(vh, dlq, 1)
    assert result.replayed == 1 and dlq.message_count == 2
    rest = replay(vh, dlq, None)
    assert rest.replayed == 1 and [e.msg.body for e in dlq.ready_entries()] == [b"plain"]
    assert next(iter(dlq.ready_entries())).deliveries == 0  # not marked redelivered by the attempt


def test_peek_shows_origin_and_reason_without_removing() -> None:
    vh, _ = _dead_lettered(2)
    dlq = vh.queues["dlq"]
    seen = peek(dlq, 5)
    assert [(m["payload"], m["original_queue"], m["reason"], m["count"]) for m in seen] == [
        ("m0", "work", "rejected", 1), ("m1", "work", "rejected", 1)]
    assert dlq.message_count == 2


def test_replayed_message_is_delivered_again_from_its_queue() -> None:
    vh, ch = _dead_lettered(1)
    replay(vh, vh.queues["dlq"], None)
    ch.consume("work", "c2", no_ack=True)
    assert [d[3] for d in deliveries(ch)] == [b"m0"]


def test_replay_with_a_resolver_sends_what_it_returns_where_it_says_and_leaves_what_it_refuses() -> None:
    vh, _ = _dead_lettered(2)
    dlq, other = vh.queues["dlq"], vh.declare_queue("other", connection=None)
    rewritten = msg("rewritten", "other", delivery_mode=2)

    def resolve(m):  # type: ignore[no-untyped-def]
        return ("other", rewritten) if m.body == b"m0" else None

    result = replay(vh, dlq, None, resolve)
    assert (result.replayed, result.after) == (1, {"dlq": 1, "targets": {"other": 1}})
    assert [e.msg.body for e in other.ready_entries()] == [b"rewritten"]
    assert [e.msg.body for e in dlq.ready_entries()] == [b"m1"]
