"""Protocol features over real sockets with real clients: alarms, heartbeats, flow, tx,
server-sent cancel, consumer timeouts, recover, shutdown."""

from __future__ import annotations

import socket
import time
import uuid

import amqp
import pika
import pika.exceptions
import pytest
from pamqp import commands as c
from pamqp import frame as pframe

from ferrymq.testing import EmbeddedBroker


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _pump(conn: pika.BlockingConnection, until, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert until(), "condition not reached in time"


def test_memory_alarm_blocks_publishers_with_connection_blocked_and_unblocks():
    with EmbeddedBroker(memory_high_watermark_bytes=10_000) as broker:
        params = pika.URLParameters(broker.amqp_url)
        pub = pika.BlockingConnection(params)
        events: list[str] = []
        pub.add_on_connection_blocked_callback(lambda *_: events.append("blocked"))
        pub.add_on_connection_unblocked_callback(lambda *_: events.append("unblocked"))
        ch = pub.channel()
        q = _name("q")
        ch.queue_declare(q)
        for _ in range(20):
            ch.basic_publish("", q, b"x" * 1000)
        _pump(pub, lambda: "blocked" in events)
        other = pika.BlockingConnection(params)
        other.channel().queue_purge(q)
        other.close()
        _pump(pub, lambda: "unblocked" in events)
        ch.basic_publish("", q, b"after")
        assert ch.basic_get(q, auto_ack=True)[2] == b"after"
        pub.close()


def test_heartbeats_keep_an_idle_connection_alive(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url + "?heartbeat=1"))
    ch = conn.channel()
    conn.sleep(3.5)  # pika closes the connection itself if our heartbeats stop
    q = _name("q")
    ch.queue_declare(q, auto_delete=True)
    assert conn.is_open
    conn.close()


def test_silent_peer_is_dropped_after_two_missed_heartbeats(ferry):
    sock = socket.create_connection(("127.0.0.1", ferry.amqp_port))
    sock.sendall(b"AMQP\x00\x00\x09\x01")
    sock.recv(4096)  # connection.start
    sock.sendall(pframe.marshal(c.Connection.StartOk({}, "PLAIN", "\0guest\0guest", "en_US"), 0))
    sock.recv(4096)  # connection.tune
    sock.sendall(pframe.marshal(c.Connection.TuneOk(0, 131072, 1), 0))
    sock.sendall(pframe.marshal(c.Connection.Open("/"), 0))
    sock.settimeout(6)
    start = time.monotonic()
    data = b"x"
    while data:
        data = sock.recv(4096)  # open-ok, heartbeats..., then EOF
    assert 1.5 < time.monotonic() - start < 5.5


def test_channel_flow_pauses_and_resumes_deliveries(amqp_url):
    port = int(amqp_url.rsplit(":", 1)[1].split("/")[0])
    conn = amqp.Connection(f"127.0.0.1:{port}", userid="guest", password="guest")
    conn.connect()
    try:
        ch = conn.channel()
        q = _name("q")
        ch.queue_declare(q, auto_delete=False)
        got: list[bytes] = []
        ch.basic_consume(q, callback=lambda m: got.append(m.body), no_ack=True)
        ch.flow(False)
        ch.basic_publish(amqp.Message(b"held"), routing_key=q)
        with pytest.raises(socket.timeout):
            conn.drain_events(timeout=0.3)
        assert got == []
        ch.flow(True)
        conn.drain_events(timeout=2)
        assert got == [b"held"]
    finally:
        conn.close()


def test_tx_commit_publishes_and_rollback_discards(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    q = _name("q")
    ch.queue_declare(q, auto_delete=True)
    ch.tx_select()
    ch.basic_publish("", q, b"dropped")
    ch.tx_rollback()
    ch.basic_publish("", q, b"kept")
    assert ch.queue_declare(q, passive=True).method.message_count == 0
    ch.tx_commit()
    assert ch.basic_get(q, auto_ack=True)[2] == b"kept"
    assert ch.basic_get(q)[0] is None
    conn.close()


def test_deleting_a_queue_sends_basic_cancel_to_its_consumer(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    q = _name("q")
    ch.queue_declare(q)
    cancelled: list[str] = []
    ch.add_on_cancel_callback(lambda frame: cancelled.append(frame.method.consumer_tag))
    tag = ch.basic_consume(q, lambda *a: None)
    conn.channel().queue_delete(q)
    _pump(conn, lambda: bool(cancelled))
    assert cancelled == [tag]
    conn.close()


def test_unacked_delivery_past_consumer_timeout_closes_channel_406():
    with EmbeddedBroker(consumer_timeout_ms=300) as broker:
        conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
        ch = conn.channel()
        q = _name("q")
        ch.queue_declare(q)
        ch.basic_publish("", q, b"slow")
        ch.basic_consume(q, lambda *a: None)
        reasons: list[Exception] = []
        ch._impl.add_on_close_callback(lambda _ch, reason: reasons.append(reason))
        _pump(conn, lambda: bool(reasons))
        (reason,) = reasons
        assert isinstance(reason, pika.exceptions.ChannelClosedByBroker)
        assert reason.reply_code == 406
        assert "delivery acknowledgement on channel 1 timed out" in reason.reply_text
        count = conn.channel().queue_declare(q, passive=True).method.message_count
        assert count == 1  # requeued
        conn.close()


def test_basic_recover_redelivers_unacked_messages(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    q = _name("q")
    ch.queue_declare(q, auto_delete=True)
    ch.basic_publish("", q, b"again")
    method, _, _ = ch.basic_get(q)
    assert not method.redelivered
    ch.basic_recover(requeue=True)
    method, _, body = ch.basic_get(q, auto_ack=True)
    assert body == b"again" and method.redelivered
    conn.close()


def test_broker_shutdown_closes_clients_with_320():
    broker = EmbeddedBroker().start()
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    broker.stop()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        for _ in range(50):
            conn.process_data_events(0.1)
    assert info.value.reply_code == 320
