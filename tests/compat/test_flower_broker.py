"""Flower's broker view (flower.utils.broker) reads queue message counts from the management API."""

from __future__ import annotations

import asyncio

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

broker_mod = pytest.importorskip("flower.utils.broker")
AUTH = ("guest", "guest")


def test_flower_broker_queues_reports_message_counts() -> None:
    with EmbeddedBroker() as b:
        # A named vhost: Flower builds ``queues/<vhost>`` and, for "/", a path (queues//) that
        # RabbitMQ 3.10 itself answers with 404.
        assert requests.put(f"{b.http_url}/api/vhosts/flowervh", json={}, auth=AUTH).status_code == 201
        amqp_url = f"amqp://guest:guest@127.0.0.1:{b.amqp_port}/flowervh"
        conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        ch = conn.channel()
        ch.queue_declare("celery")
        ch.queue_declare("other")
        for _ in range(3):
            ch.basic_publish("", "celery", b"task")
        conn.close()
        flower = broker_mod.Broker(amqp_url, http_api=f"http://guest:guest@127.0.0.1:{b.http_port}/api/")
        queues = asyncio.run(flower.queues(["celery"]))
        assert [(q["name"], q["messages"], q["messages_ready"]) for q in queues] == [("celery", 3, 3)]
