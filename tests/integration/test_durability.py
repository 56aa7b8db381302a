"""Durable queues over real sockets: what survives a restart, confirms after fsync, paging, disk alarm."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

import ferrymq.storage.commit as commit
from ferrymq.testing import EmbeddedBroker

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def _channel(broker: EmbeddedBroker) -> tuple[pika.BlockingConnection, Any]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    return conn, conn.channel()


def _count(ch, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def _drain(ch, queue: str) -> list[tuple[bytes, bool]]:
    out = []
    while True:
        method, _props, body = ch.basic_get(queue, auto_ack=True)
        if method is None:
            return out
        out.append((body, method.redelivered))


def test_restart_keeps_durable_topology_and_persistent_messages_only(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.exchange_declare("orders", "topic", durable=True)
        ch.exchange_declare("scratch", "fanout", durable=False)
        ch.queue_declare("durable-q", durable=True, arguments={"x-max-priority": 5})
        ch.queue_declare("transient-q", durable=False)
        ch.queue_bind("durable-q", "orders", "eu.#")
        ch.queue_bind("transient-q", "orders", "eu.#")
        for i in range(6):
            ch.basic_publish("orders", "eu.fr", f"m{i}".encode(), PERSISTENT if i % 2 == 0 else TRANSIENT)
        assert _count(ch, "durable-q") == 6
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        assert _count(ch, "durable-q") == 3  # transient messages die with the broker, as in RabbitMQ
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            ch.queue_declare("transient-q", passive=True)
        assert err.value.reply_code == 404
        ch = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            ch.exchange_declare("scratch", "fanout", passive=True)
        ch = conn.channel()
        # the durable binding and the queue's arguments came back
        ch.basic_publish("orders", "eu.de", b"after", PERSISTENT)
        assert [b for b, _ in _drain(ch, "durable-q")] == [b"m0", b"m2", b"m4", b"after"]
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            ch.queue_declare("durable-q", durable=True)  # no x-max-priority: inequivalent
        assert err.value.reply_code == 406
        conn.close()


def test_unacked_messages_come_back_redelivered_and_undelivered_ones_do_not(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.queue_declare("work", durable=True)
        for i in range(6):
            ch.basic_publish("", "work", f"job{i}".encode(), PERSISTENT)
        first = ch.basic_get("work")
        ch.basic_ack(first[0].delivery_tag)
        ch.basic_get("work")  # job1 stays unacked
        ch.basic_get("work")  # job2 stays unacked
        assert _count(ch, "work") == 3
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        got = _drain(ch, "work")
        assert got == [(b"job1", True), (b"job2", True), (b"job3", False), (b"job4", False), (b"job5", False)]
        conn.close()


def test_delivery_count_survives_a_restart(tmp_path):
    args = {"x-queue-type": "quorum", "x-delivery-limit": 5}
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("limited", durable=True, arguments=args)
        ch.basic_publish("", "limited", b"poison", PERSISTENT)
        for _ in range(2):
            method, _, _ = ch.basic_get("limited")
            ch.basic_nack(method.delivery_tag, requeue=True)
        _count(ch, "limited")
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        method, props, _ = ch.basic_get("limited")
        assert method.redelivered
        assert props.headers["x-delivery-count"] == 2
        conn.close()


def test_purge_and_delete_are_durable_and_delete_removes_the_queue_files(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.queue_declare("purged", durable=True)
        ch.queue_declare("deleted", durable=True)
        for _ in range(10):
            ch.basic_publish("", "purged", b"x", PERSISTENT)
            ch.basic_publish("", "deleted", b"y", PERSISTENT)
        assert ch.queue_purge("purged").method.message_count == 10
        ch.basic_publish("", "purged", b"kept", PERSISTENT)
        ch.queue_delete("deleted")
        conn.close()
    assert len(list((tmp_path / "queues").iterdir())) == 1
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        assert _drain(ch, "purged") == [(b"kept", False)]
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            ch.queue_declare("deleted", passive=True)
        conn.close()


def test_publisher_confirm_waits_for_the_fsync_that_covers_the_message(tmp_path, monkeypatch):
    gate = threading.Event()
    synced: list[float] = []
    real = commit.sync_data

    def slow_sync(fd: int) -> None:
        gate.wait(10)
        real(fd)
        synced.append(time.monotonic())

    monkeypatch.setattr(commit, "sync_data", slow_sync)
    monkeypatch.setattr("ferrymq.storage.segment.sync_data", slow_sync)
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        gate.set()  # declare's own segment creation may sync; hold the gate only for the publish
        conn.process_data_events(0.1)
        gate.clear()
        ch.confirm_delivery()
        acked_at: list[float] = []

        def publish() -> None:
            ch.basic_publish("", "q", b"must be on disk", PERSISTENT)
            acked_at.append(time.monotonic())

        t = threading.Thread(target=publish)
        t.start()
        time.sleep(0.5)
        assert not acked_at, "confirm sent before the fsync returned"
        gate.set()
        t.join(10)
        assert acked_at and synced and acked_at[0] >= synced[-1]
        conn.close()


def test_transient_messages_in_a_durable_queue_are_confirmed_without_waiting_for_a_blocked_disk(
    tmp_path, monkeypatch
):
    gate = threading.Event()
    monkeypatch.setattr("ferrymq.storage.segment.sync_data", lambda fd: gate.wait(10))
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        ch.confirm_delivery()
        started = time.monotonic()
        ch.basic_publish("", "q", b"transient", TRANSIENT)
        assert time.monotonic() - started < 2
        gate.set()
        conn.close()


def test_backlog_beyond_the_window_is_paged_to_disk_drains_in_order_and_space_is_reclaimed(tmp_path):
    n = 12_000  # three times the in-memory window
    body = b"p" * 1000
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.queue_declare("backlog", durable=True)
        for i in range(n):
            ch.basic_publish("", "backlog", b"%06d" % i + body, PERSISTENT if i % 3 else TRANSIENT)
        queue = broker.call(lambda: broker.running.broker.vhosts["/"].queues["backlog"])
        paged = broker.call(lambda: queue.paged_count)
        assert paged > n // 2, "the backlog should mostly live on disk"
        assert broker.call(lambda: queue.ready_bytes) <= 17 * 1024 * 1024
        ch.basic_qos(prefetch_count=200)
        seen = []
        for method, _props, got in ch.consume("backlog", inactivity_timeout=2):
            if method is None:
                break
            seen.append(int(got[:6]))
            ch.basic_ack(method.delivery_tag)
            if len(seen) == n:
                break
        ch.cancel()
        assert seen == list(range(n))
        _count(ch, "backlog")  # a round trip: the acks are processed and logged
        conn.close()
    files = [p for p in (tmp_path / "queues").rglob("*.seg")]
    assert sum(p.stat().st_size for p in files) < 5 * 1024 * 1024, "space not reclaimed after the drain"


def test_paged_backlog_survives_a_restart_in_order(tmp_path):
    n = 9_000
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.queue_declare("backlog", durable=True)
        for i in range(n):
            ch.basic_publish("", "backlog", b"%06d" % i, PERSISTENT)
        for _ in range(10):
            method, _, _ = ch.basic_get("backlog")
            ch.basic_ack(method.delivery_tag)
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        assert _count(ch, "backlog") == n - 10
        got = [int(b) for b, _ in _drain(ch, "backlog")]
        assert got == list(range(10, n))
        conn.close()


def test_disk_alarm_blocks_publishers_with_connection_blocked(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), disk_free_limit_bytes=1 << 60) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        events: list[str] = []
        conn.add_on_connection_blocked_callback(lambda _c, frame: events.append(frame.method.reason))
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            conn.process_data_events(0.05)
        assert events == ["low on disk"]
        late = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))  # opened during the alarm
        late_events: list[str] = []
        late.add_on_connection_blocked_callback(lambda _c, frame: late_events.append(frame.method.reason))
        late.channel().basic_publish("", "nowhere", b"x")
        deadline = time.monotonic() + 5
        while not late_events and time.monotonic() < deadline:
            late.process_data_events(0.05)
        assert late_events == ["low on disk"]
        conn.close()  # (late is not read while blocked, as on RabbitMQ: the broker's stop closes it)


def test_recovery_summary_is_logged_on_start(tmp_path, caplog):
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        ch.basic_publish("", "q", b"1", PERSISTENT)
        conn.close()
    with caplog.at_level(logging.INFO, logger="ferrymq"), EmbeddedBroker(data_dir=str(tmp_path)):
        pass
    lines = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert lines and "recovered 1 durable queue(s)" in lines[0] and "1 message(s)" in lines[0]


def test_a_second_broker_cannot_open_a_data_directory_in_use(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path)), pytest.raises(RuntimeError):
        EmbeddedBroker(data_dir=str(tmp_path)).start()


def test_embedded_broker_uses_a_private_temporary_data_directory():
    with EmbeddedBroker() as broker:
        data = Path(broker.settings.data_dir)
        assert data.is_dir() and (data / "metadata.sqlite3").exists()
    assert not data.exists()


def test_a_full_disk_holds_confirms_until_writes_succeed_and_corrupts_nothing(tmp_path, monkeypatch):
    import errno
    import os

    full = threading.Event()
    real_pwrite = os.pwrite

    def pwrite(fd: int, data: Any, offset: int) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        ch.confirm_delivery()
        ch.basic_publish("", "q", b"before", PERSISTENT)
        full.set()
        acked: list[bool] = []
        t = threading.Thread(target=lambda: (ch.basic_publish("", "q", b"during", PERSISTENT),
                                             acked.append(True)))
        t.start()
        time.sleep(0.6)
        assert not acked, "a message that is not on disk was confirmed"
        full.clear()  # space is back: the held write is retried and then confirmed
        t.join(10)
        assert acked
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        durability = broker.running.durability
        assert durability.summary.bytes_truncated == 0 and durability.summary.errors == 0
        conn, ch = _channel(broker)
        assert [b for b, _ in _drain(ch, "q")] == [b"before", b"during"]
        conn.close()


def test_per_queue_fsync_never_confirms_without_waiting_and_bad_values_get_406(tmp_path, monkeypatch):
    gate = threading.Event()
    monkeypatch.setattr("ferrymq.storage.segment.sync_data", lambda fd: gate.wait(10))
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("fast", durable=True, arguments={"x-fsync": "never"})
        ch.confirm_delivery()
        started = time.monotonic()
        ch.basic_publish("", "fast", b"page cache is enough", PERSISTENT)
        assert time.monotonic() - started < 2
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as err:
            ch.queue_declare("bad", durable=True, arguments={"x-fsync": "sometimes"})
        assert err.value.reply_code == 406 and "x-fsync" in err.value.reply_text
        gate.set()
        conn.close()


def test_fsync_interval_confirms_after_the_timed_commit(tmp_path):
    with EmbeddedBroker(data_dir=str(tmp_path), fsync="interval:200") as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        ch.confirm_delivery()
        for i in range(5):
            ch.basic_publish("", "q", b"%d" % i, PERSISTENT)
        counters = broker.call(lambda: dict(broker.running.commit.counters))
        assert 1 <= counters["commits"] <= 5 and counters["replies_held"] == 5
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        assert _count(ch, "q") == 5
        conn.close()


def test_tx_commit_ok_waits_for_the_fsync_of_the_transactions_messages(tmp_path, monkeypatch):
    gate = threading.Event()
    real = commit.sync_data

    def slow_sync(fd: int) -> None:
        gate.wait(10)
        real(fd)

    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.queue_declare("q", durable=True)
        ch.tx_select()
        monkeypatch.setattr("ferrymq.storage.segment.sync_data", slow_sync)
        ch.basic_publish("", "q", b"in a transaction", PERSISTENT)
        done: list[bool] = []
        t = threading.Thread(target=lambda: (ch.tx_commit(), done.append(True)))
        t.start()
        time.sleep(0.5)
        assert not done, "tx.commit-ok sent before the fsync returned"
        gate.set()
        t.join(10)
        assert done and _count(ch, "q") == 1
        conn.close()


def test_delayed_persistent_messages_survive_a_restart_and_arrive_when_due(tmp_path):
    args = {"x-delayed-type": "direct"}
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        ch.confirm_delivery()
        ch.exchange_declare("later", "x-delayed-message", durable=True, arguments=args)
        ch.queue_declare("due", durable=True)
        ch.queue_bind("due", "later", "k")
        for delay, body in ((1500, b"persistent"), (1500, b"transient")):
            props = pika.BasicProperties(delivery_mode=2 if body == b"persistent" else 1,
                                         headers={"x-delay": delay})
            ch.basic_publish("later", "k", body, props)
        assert _count(ch, "due") == 0
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:
        conn, ch = _channel(broker)
        assert _count(ch, "due") == 0  # still waiting: due at the same wall-clock time as before
        deadline = time.monotonic() + 5
        while _count(ch, "due") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [b for b, _ in _drain(ch, "due")] == [b"persistent"]
        conn.close()
    with EmbeddedBroker(data_dir=str(tmp_path)) as broker:  # delivered once: not held again
        conn, ch = _channel(broker)
        time.sleep(0.3)
        assert _count(ch, "due") == 0
        conn.close()
