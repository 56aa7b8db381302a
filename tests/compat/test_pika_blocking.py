"""pika's BlockingConnection against FerryMQ over a real socket."""

from __future__ import annotations

import uuid

import pika
import pika.exceptions
import pytest


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def channel(amqp_url):
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    yield ch
    if conn.is_open:
        conn.close()


def test_pika_publish_and_consume_round_trip(channel):
    q = _name("q")
    channel.queue_declare(q)
    channel.confirm_delivery()
    for i in range(10):
        channel.basic_publish("", q, f"m{i}".encode(),
                              pika.BasicProperties(content_type="text/plain", headers={"i": i}))
    bodies = []
    for method, props, body in channel.consume(q, inactivity_timeout=2):
        if method is None:
            break
        bodies.append(body)
        assert props.content_type == "text/plain"
        channel.basic_ack(method.delivery_tag)
        if len(bodies) == 10:
            break
    channel.cancel()
    assert bodies == [f"m{i}".encode() for i in range(10)]


def test_pika_confirm_delivery_raises_unroutable_for_mandatory(channel):
    channel.confirm_delivery()
    with pytest.raises(pika.exceptions.UnroutableError):
        channel.basic_publish("", _name("nowhere"), b"x", mandatory=True)


def test_pika_basic_get_and_message_count(channel):
    q = _name("q")
    channel.queue_declare(q)
    channel.basic_publish("", q, b"a")
    channel.basic_publish("", q, b"b")
    method, _, body = channel.basic_get(q)
    assert body == b"a" and method.message_count == 1
    channel.basic_ack(method.delivery_tag)
    assert channel.queue_declare(q, passive=True).method.message_count == 1


def test_pika_passive_declare_of_missing_queue_closes_channel_404(channel):
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.queue_declare(_name("missing"), passive=True)
    assert info.value.reply_code == 404
    assert info.value.reply_text.startswith("NOT_FOUND - no queue 'missing-")
    assert info.value.reply_text.endswith("' in vhost '/'")


def test_pika_topic_exchange_routes_by_pattern(channel):
    ex, q = _name("ex"), _name("q")
    channel.exchange_declare(ex, "topic")
    channel.queue_declare(q)
    channel.queue_bind(q, ex, "logs.*.error")
    channel.basic_publish(ex, "logs.db.error", b"yes")
    channel.basic_publish(ex, "logs.db.info", b"no")
    _, _, body = channel.basic_get(q, auto_ack=True)
    assert body == b"yes"
    assert channel.basic_get(q)[0] is None


def test_pika_reject_dead_letters_with_x_death_header(channel):
    dlx, dead, q = _name("dlx"), _name("dead"), _name("q")
    channel.exchange_declare(dlx, "fanout")
    channel.queue_declare(dead)
    channel.queue_bind(dead, dlx)
    channel.queue_declare(q, arguments={"x-dead-letter-exchange": dlx})
    channel.basic_publish("", q, b"bad")
    method, _, _ = channel.basic_get(q)
    channel.basic_reject(method.delivery_tag, requeue=False)
    method, props, body = channel.basic_get(dead, auto_ack=True)
    assert body == b"bad"
    death = props.headers["x-death"][0]
    assert death["reason"] == b"rejected" or death["reason"] == "rejected"
    assert death["count"] == 1


def test_pika_nack_requeue_redelivers_with_redelivered_flag(channel):
    q = _name("q")
    channel.queue_declare(q)
    channel.basic_publish("", q, b"again")
    method, _, _ = channel.basic_get(q)
    channel.basic_nack(method.delivery_tag, requeue=True)
    method, _, body = channel.basic_get(q, auto_ack=True)
    assert body == b"again" and method.redelivered


def test_pika_large_message_spans_body_frames(channel):
    q = _name("q")
    channel.queue_declare(q)
    body = bytes(range(256)) * 2000  # 512 KB > frame_max
    channel.basic_publish("", q, body)
    _, _, got = channel.basic_get(q, auto_ack=True)
    assert got == body


def test_pika_redeclare_with_other_type_is_406(channel):
    ex = _name("ex")
    channel.exchange_declare(ex, "direct")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        channel.exchange_declare(ex, "fanout")
    assert info.value.reply_code == 406
    assert "inequivalent arg 'type'" in info.value.reply_text


def test_pika_wrong_password_is_refused(ferry):
    params = pika.URLParameters(ferry.amqp_url.replace("guest:guest", "guest:nope"))
    with pytest.raises(pika.exceptions.ProbableAuthenticationError):
        pika.BlockingConnection(params)


def test_pika_unknown_vhost_is_refused(ferry):
    params = pika.URLParameters(ferry.amqp_url.replace("%2F", "nope"))
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError):
        pika.BlockingConnection(params)


def test_pika_message_groups_extension_holds_back_a_busy_group(channel):
    q = _name("fifo")
    channel.queue_declare(q, arguments={"x-message-groups": True, "x-deduplication-window": 60000})
    for body, group, mid in (("a1", "a", "1"), ("a1-dup", "a", "1"), ("a2", "a", "2"), ("b1", "b", "3")):
        channel.basic_publish("", q, body.encode(),
                              pika.BasicProperties(message_id=mid, headers={"x-group-id": group}))
    first, _, body1 = channel.basic_get(q)
    _, _, body2 = channel.basic_get(q)
    assert (body1, body2) == (b"a1", b"b1")
    assert channel.basic_get(q)[0] is None  # a2 waits for a1
    channel.basic_ack(first.delivery_tag)
    assert channel.basic_get(q, auto_ack=True)[2] == b"a2"


def test_users_from_settings_log_in_and_guest_can_be_removed():
    from ferrymq.testing import EmbeddedBroker

    with EmbeddedBroker(users={"alice": "s3cret"}) as broker:
        url = f"amqp://alice:s3cret@127.0.0.1:{broker.amqp_port}/%2F"
        conn = pika.BlockingConnection(pika.URLParameters(url))
        conn.channel().queue_declare(_name("q"), auto_delete=True)
        conn.close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
