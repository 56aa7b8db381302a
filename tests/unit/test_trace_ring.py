"""The trace ring: sampling, the bound, eviction of the oldest, events in order."""

from __future__ import annotations

from typing import Any

import pytest

from ferrymq import limits
from ferrymq.clock import ManualClock
from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.core.trace import Tracer, marked
from ferrymq.protocols.amqp.properties import encode_properties


def msg(body: bytes = b"x", headers: dict | None = None) -> Message:
    if headers is None:
        return Message("ex", "rk", body)
    return Message("ex", "rk", body, Properties(headers=headers), None)


def test_sampling_off_by_default_traces_only_marked_messages() -> None:
    t = Tracer(ManualClock())
    assert t.sample_every == 0
    assert not any(t.wants(msg()) for _ in range(100))
    assert t.wants(msg(headers={"x-ferrymq-trace": "1"}))
    assert not t.wants(msg(headers={"other": 1}))


def test_marked_reads_the_raw_header_bytes_without_decoding() -> None:
    raw = encode_properties(Properties(headers={"x-ferrymq-trace": "y"}))
    assert raw[0] & 0x20
    assert marked(Message("ex", "rk", b"x", Properties(), raw))  # props say nothing: raw is read
    assert not marked(Message("ex", "rk", b"x", Properties(), b"\x00\x00"))


def test_one_in_n_is_sampled() -> None:
    t = Tracer(ManualClock())
    t.configure(4)
    picks = [t.wants(msg()) for _ in range(12)]
    assert picks.count(True) == 3
    assert picks[3] and picks[7] and picks[11]


def test_configure_refuses_negative_rates() -> None:
    with pytest.raises(ValueError):
        Tracer(ManualClock()).configure(-1)


def test_ring_is_bounded_and_evicts_the_oldest() -> None:
    t = Tracer(ManualClock(), capacity=3)
    ids = [t.start("/", "ex", f"k{i}", msg()) for i in range(5)]
    assert [tr.id for tr in t.newest_first()] == [ids[4], ids[3], ids[2]]
    t.record(ids[0], "acked")  # evicted: ignored, not resurrected
    assert ids[0] not in t.traces


def test_events_keep_their_order_and_time_and_are_bounded() -> None:
    clock = ManualClock()
    t = Tracer(clock)
    m = msg(b"hello")
    tid = t.start("/", "ex", "rk", m)
    assert m.trace == tid
    clock.advance(5)
    t.record(tid, "routed", "q", "to Queue")
    clock.advance(5)
    t.record(tid, "delivered", "q", "")
    events = t.traces[tid].as_json()["events"]
    assert [e["event"] for e in events] == ["published", "routed", "delivered"]
    assert [e["at_ms"] for e in events] == [clock.now_ms() - 10, clock.now_ms() - 5, clock.now_ms()]
    for _ in range(limits.TRACE_EVENTS_MAX * 2):
        t.record(tid, "requeued", "q")
    assert len(t.traces[tid].events) == limits.TRACE_EVENTS_MAX
    assert t.traces[tid].as_json()["size"] == 5


def test_stored_records_each_waiting_trace_once() -> None:
    t = Tracer(ManualClock())
    tid = t.start("/", "ex", "rk", msg())
    t.stored([(tid, "q")], True, 7)
    assert t.traces[tid].events[-1][1:] == ("stored", "q", "fsync commit 7")


def traced_broker() -> tuple[Any, Any, Any]:
    from ferrymq.clock import Rng
    from ferrymq.core.broker import Broker

    clock = ManualClock()
    broker = Broker(clock, Rng(1))
    broker.tracer.configure(1)
    vhost = broker.vhosts["/"]
    return broker, vhost, clock


def kinds(broker: Any) -> list[list[str]]:
    return [[e[1] for e in t.events] for t in reversed(broker.tracer.newest_first())]


def test_core_traces_expiry_and_length_limit_drops() -> None:
    broker, vhost, clock = traced_broker()
    vhost.declare_queue("ttl", connection=None, arguments={"x-message-ttl": 10})
    vhost.declare_queue("short", connection=None, arguments={"x-max-length": 1})
    ch = broker.open_channel(vhost, 1, None, "guest")
    ch.publish("", "ttl", False, msg())
    ch.publish("", "short", False, msg())
    ch.publish("", "short", False, msg())  # drop-head: the first one goes
    clock.advance(11)
    broker.tick()
    assert kinds(broker) == [["published", "routed", "expired"], ["published", "routed", "dropped"],
                             ["published", "routed"]]


def test_core_traces_nack_requeue_then_nack_and_basic_get() -> None:
    broker, vhost, _ = traced_broker()
    vhost.declare_queue("q", connection=None)
    ch = broker.open_channel(vhost, 1, None, "guest")
    ch.publish("", "q", False, msg())
    tag, *_ = ch.get("q", False)
    ch.nack(tag, False, True)
    tag, *_ = ch.get("q", False)
    ch.nack(tag, False, False)
    assert kinds(broker) == [["published", "routed", "delivered", "requeued", "delivered", "nacked"]]
    events = broker.tracer.newest_first()[0].events
    assert "delivery_count=2" in events[4][3] and "(basic.get)" in events[4][3]
