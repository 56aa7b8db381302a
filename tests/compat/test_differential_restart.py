"""Differential restart: the same pika calls, then a broker restart, on FerryMQ and on RabbitMQ 3.10;
what survives (queues, exchanges, bindings, messages, redelivered flags) must be the same."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pika
import pika.exceptions
import pytest

from ferrymq.bench import rabbitmq_node as rabbitmq
from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.rabbitmq

PERSISTENT = pika.BasicProperties(delivery_mode=2)
TRANSIENT = pika.BasicProperties(delivery_mode=1)


def before(ch: Any) -> None:
    ch.confirm_delivery()
    ch.exchange_declare("dx", "topic", durable=True)
    ch.exchange_declare("tx", "fanout", durable=False)
    ch.queue_declare("dq", durable=True)
    ch.queue_declare("tq", durable=False)
    ch.queue_declare("dq-args", durable=True, arguments={"x-max-length": 3, "x-message-ttl": 600_000})
    ch.queue_bind("dq", "dx", "k.#")
    ch.queue_bind("tq", "dx", "k.#")
    ch.exchange_bind("tx", "dx", "k.#")
    for i in range(6):
        ch.basic_publish("dx", "k.a", f"m{i}".encode(), PERSISTENT if i % 2 == 0 else TRANSIENT)
    for i in range(5):
        ch.basic_publish("", "dq-args", f"a{i}".encode(), PERSISTENT)
    ch.basic_get("dq")  # m0 goes out and is never acked before the restart


def after(conn: pika.BlockingConnection) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, name in (("queue", "dq"), ("queue", "tq"), ("queue", "dq-args"), ("exchange", "dx"),
                       ("exchange", "tx")):
        ch = conn.channel()
        try:
            if kind == "queue":
                out[name] = ch.queue_declare(name, passive=True).method.message_count
            else:
                ch.exchange_declare(name, passive=True)
                out[name] = "exists"
        except pika.exceptions.ChannelClosedByBroker as exc:
            out[name] = exc.reply_code
    ch = conn.channel()
    ch.basic_publish("dx", "k.b", b"after", PERSISTENT)  # the durable binding routes it
    got = []
    while True:
        method, _props, body = ch.basic_get("dq", auto_ack=True)
        if method is None:
            break
        got.append((body, method.redelivered))
    out["dq messages"] = got
    out["dq-args messages"] = [b for _m, _p, b in iter(lambda: ch.basic_get("dq-args", auto_ack=True),
                                                          (None, None, None))]
    return out


def run(start: Callable[[], str], restart: Callable[[], str]) -> dict[str, Any]:
    conn = pika.BlockingConnection(pika.URLParameters(start()))
    before(conn.channel())
    url = restart()  # the broker goes down with the connection (and m0's delivery) still open
    try:
        conn.close()
    except pika.exceptions.AMQPError:
        pass
    conn = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return after(conn)
    finally:
        conn.close()


def test_restart_keeps_the_same_things_as_rabbitmq(tmp_path: Path, monkeypatch):
    if not rabbitmq.available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    ferry: list[EmbeddedBroker] = []

    def ferry_start() -> str:
        ferry.append(EmbeddedBroker(data_dir=str(tmp_path / "ferry")).start())
        return ferry[-1].amqp_url

    def ferry_restart() -> str:
        ferry[-1].stop()
        return ferry_start()

    nodes: list[rabbitmq.RabbitNode] = []

    def rabbit_start() -> str:
        nodes.append(rabbitmq.start_rabbitmq(tmp_path / "rabbit"))
        return nodes[-1].amqp_url

    def rabbit_restart() -> str:
        node = nodes[-1]
        node.stop()
        # the same node name and ports, so the node finds its own database again
        ports = itertools.chain([node.port, node.dist_port], iter(rabbitmq.free_port, None))
        monkeypatch.setattr(rabbitmq, "free_port", lambda: next(ports))
        return rabbit_start()

    try:
        ours = run(ferry_start, ferry_restart)
        theirs = run(rabbit_start, rabbit_restart)
    finally:
        for b in ferry:
            b.stop()
        for n in nodes:
            n.stop()
    assert ours == theirs, (ours, theirs)
    assert theirs["tq"] == 404 and theirs["dq messages"][0] == (b"m0", True)
