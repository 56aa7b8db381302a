"""The core queue over a store (a QueueLog on a MemoryLog): paging keeps order, TTL and dead-lettering
still apply to messages that were on disk, and a rebuilt queue matches the one that was lost."""

from __future__ import annotations

from typing import Any

from ferrymq.core.channel import DELIVER
from ferrymq.core.queue import Queue
from ferrymq.limits import PAGE_WINDOW_MESSAGES
from ferrymq.protocols.amqp.properties import encode_properties, intern_properties
from ferrymq.storage.memory import MemoryLog
from ferrymq.storage.queue_log import QueueLog
from tests.support.core import deliveries, new_broker, open_channel, publish


class MemoryTopology:
    """Durable queues get a QueueLog on a MemoryLog that outlives the broker (a 'restart')."""

    def __init__(self) -> None:
        self.logs: dict[str, MemoryLog] = {}

    def queue_declared(self, vhost: str, name: str, auto_delete: bool, arguments: dict[str, Any]) -> QueueLog:
        log = self.logs.setdefault(name, MemoryLog())
        return QueueLog(log, encode_properties, intern_properties)

    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None


def _queue(broker, name: str = "q", **args: Any) -> Queue:
    return broker.vhosts["/"].declare_queue(name, connection=None, durable=True, arguments=args)


def _flush(queue: Queue) -> None:
    queue.store.write()  # type: ignore[union-attr]


def test_backlog_pages_out_beyond_the_window_and_comes_back_in_order():
    topo = MemoryTopology()
    broker, _clock = new_broker(topology=topo)
    q = _queue(broker)
    ch = open_channel(broker)
    n = PAGE_WINDOW_MESSAGES * 3
    for i in range(n):
        publish(ch, f"{i}", delivery_mode=2 if i % 2 else 1)
    assert q.ready_count == PAGE_WINDOW_MESSAGES and q.paged_count == n - PAGE_WINDOW_MESSAGES
    assert q.message_count == n
    _flush(q)
    ch.consume("q", "c", no_ack=True)
    got = [int(body) for *_, body in deliveries(ch)]
    assert got == list(range(n))
    assert q.message_count == 0


def test_paged_messages_expire_and_dead_letter_when_their_ttl_passes():
    broker, clock = new_broker(topology=MemoryTopology())
    vhost = broker.vhosts["/"]
    vhost.declare_queue("dead", connection=None)
    q = _queue(broker, **{"x-message-ttl": 1000, "x-dead-letter-exchange": "",
                          "x-dead-letter-routing-key": "dead"})
    ch = open_channel(broker)
    n = PAGE_WINDOW_MESSAGES + 500
    for i in range(n):
        publish(ch, f"{i}", delivery_mode=2)
    assert q.paged_count == 500
    clock.advance(1001)
    broker.tick()
    assert q.message_count == 0
    assert vhost.queues["dead"].message_count == n


def test_a_rebuilt_queue_has_the_live_messages_in_order_with_redelivered_flags():
    topo = MemoryTopology()
    broker, _ = new_broker(topology=topo)
    q = _queue(broker)
    ch = open_channel(broker)
    for i in range(PAGE_WINDOW_MESSAGES + 10):
        publish(ch, f"{i}", delivery_mode=2)
    ch.qos(3, False)
    ch.consume("q", "c")
    out = [e for e in ch.outbox if e[0] == DELIVER]
    ch.outbox.clear()
    ch.ack(out[0][2], False)  # 0 acked; 1, 2 and then 3 out, unacked, when the broker dies
    _flush(q)
    broker2, _ = new_broker(topology=topo)  # the restart: same logs, new core
    q2 = _queue(broker2)
    assert q2.message_count == PAGE_WINDOW_MESSAGES + 9
    ch2 = open_channel(broker2)
    ch2.consume("q", "c", no_ack=True)
    got = deliveries(ch2)
    assert [int(b) for *_, b in got] == list(range(1, PAGE_WINDOW_MESSAGES + 10))
    assert [r for _, _, r, _ in got[:4]] == [True, True, True, False]
