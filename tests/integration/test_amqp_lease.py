"""Per-delivery leases over a real socket with pika: x-delivery-lease takes a held delivery back and
hands it to another consumer; publishes to amq.ferrymq.lease extend or release it (FerryMQ only)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pika.exceptions
import pytest

LEASE_EXCHANGE = "amq.ferrymq.lease"


def _pump(conn: pika.BlockingConnection, until: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not until() and time.monotonic() < deadline:
        conn.process_data_events(0.05)
    assert until(), "condition not reached in time"


class Pair:
    """A holder (basic.get, manual ack, confirms on) and a waiting consumer on another connection."""

    def __init__(self, url: str, lease_ms: int) -> None:
        self.queue = f"lease-{uuid.uuid4().hex[:8]}"
        self.holder_conn = pika.BlockingConnection(pika.URLParameters(url))
        self.holder = self.holder_conn.channel()
        self.holder.confirm_delivery()
        self.holder.queue_declare(self.queue, arguments={"x-delivery-lease": lease_ms})
        self.holder.basic_publish("", self.queue, b"job")
        method, _, body = self.holder.basic_get(self.queue)
        assert body == b"job" and not method.redelivered
        self.tag = method.delivery_tag
        self.waiter_conn = pika.BlockingConnection(pika.URLParameters(url))
        self.waiter = self.waiter_conn.channel()
        self.got: list[tuple[bytes, bool]] = []
        self.waiter.basic_consume(self.queue, self._on_message)

    def _on_message(self, ch, method, _props, body) -> None:
        self.got.append((body, method.redelivered))
        ch.basic_ack(method.delivery_tag)

    def lease(self, key: str, ms: int) -> None:
        """A confirmed publish: when it returns, the broker has acted on it."""
        self.holder.basic_publish(LEASE_EXCHANGE, key, b"", pika.BasicProperties(headers={"x-lease-ms": ms}))

    def close(self) -> None:
        for conn in (self.holder_conn, self.waiter_conn):
            if conn.is_open:
                conn.close()


@pytest.fixture
def pair_factory(amqp_url: str) -> Iterator[Callable[[int], Pair]]:
    made: list[Pair] = []

    def make(lease_ms: int) -> Pair:
        made.append(Pair(amqp_url, lease_ms))
        return made[-1]

    yield make
    for pair in made:
        pair.close()


def test_delivery_held_past_its_lease_goes_to_another_consumer_redelivered(pair_factory):
    pair = pair_factory(300)
    _pump(pair.waiter_conn, lambda: bool(pair.got))
    assert pair.got == [(b"job", True)]
    pair.holder.basic_ack(pair.tag)  # late: ignored, the channel stays open
    pair.holder.queue_declare(pair.queue, passive=True)
    assert pair.holder.is_open


def test_an_extending_consumer_keeps_its_delivery(pair_factory):
    pair = pair_factory(1000)
    held_until = time.monotonic() + 2.5  # well past the 1 s lease
    while time.monotonic() < held_until:
        pair.lease(str(pair.tag), 1000)
        pair.waiter_conn.process_data_events(0.1)
    assert pair.got == []
    pair.holder.basic_ack(pair.tag)
    pair.waiter_conn.process_data_events(0.3)
    assert pair.got == [] and pair.holder.queue_declare(pair.queue, passive=True).method.message_count == 0


def test_release_with_lease_ms_zero_hands_the_delivery_over_at_once(pair_factory):
    pair = pair_factory(600_000)  # ten minutes: only the release can explain a handover
    pair.waiter_conn.process_data_events(0.2)
    assert pair.got == []
    pair.lease("*", 0)
    _pump(pair.waiter_conn, lambda: bool(pair.got))
    assert pair.got == [(b"job", True)]


def test_malformed_lease_request_closes_the_channel_with_406(pair_factory):
    pair = pair_factory(600_000)
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        pair.holder.basic_publish(LEASE_EXCHANGE, "not-a-tag", b"",
                                  pika.BasicProperties(headers={"x-lease-ms": 10}))
    assert info.value.reply_code == 406 and "delivery tag in decimal" in info.value.reply_text


def test_bad_x_delivery_lease_is_refused_with_406(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare(f"bad-{uuid.uuid4().hex[:8]}", arguments={"x-delivery-lease": 0})
        assert info.value.reply_code == 406 and "{value_zero,0}" in info.value.reply_text
    finally:
        conn.close()


def test_on_rabbitmq_neither_exists_the_argument_is_ignored_and_the_exchange_is_404(rabbitmq_url):
    """What docs/extensions.md says a client meets on RabbitMQ, checked against a real node."""
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        ch = conn.channel()
        queue = f"lease-{uuid.uuid4().hex[:8]}"
        ch.queue_declare(queue, auto_delete=True, arguments={"x-delivery-lease": 0})  # not validated
        ch.confirm_delivery()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            ch.basic_publish(LEASE_EXCHANGE, "1", b"", pika.BasicProperties(headers={"x-lease-ms": 0}))
        assert info.value.reply_code == 404
        assert info.value.reply_text == f"NOT_FOUND - no exchange '{LEASE_EXCHANGE}' in vhost '/'"
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().exchange_declare(LEASE_EXCHANGE, "direct")
        assert info.value.reply_code == 403
    finally:
        conn.close()
