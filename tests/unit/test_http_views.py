"""The management API's views of core objects: the fast pre-encoded queue view says exactly what the
dict view says, and binding properties keys are RabbitMQ's."""

from __future__ import annotations

import json

from ferrymq.http import views
from tests.support.core import msg, new_broker, open_channel


def test_queue_text_equals_queue_json_for_every_kind_of_queue() -> None:
    broker, clock = new_broker()
    vh = broker.vhosts["/"]
    owner = object()
    vh.declare_queue("plain", connection=None)
    vh.declare_queue("ex\u00e9 \"quoted\"", connection=owner, exclusive=True, durable=False)
    vh.declare_queue("args", connection=None, durable=True,
                     arguments={"x-max-length": 5, "x-custom": b"\xffraw", "x-q": [1, "a"]})
    vh.publish("", "plain", msg("hello"))
    vh.publish("", "plain", msg("again"))
    ch = open_channel(broker)
    ch.get("plain", no_ack=False)
    ch.consume("args", "ctag", no_ack=False, exclusive=False, arguments={})
    clock.advance(1234)
    now, mono = 1_764_720_155_474, clock.monotonic_ms()
    for q in vh.queues.values():
        text = views.queue_text(views.queue_text_vhost("/"), q, now, mono)
        assert json.loads(text) == views.queue_json("/", q, now, mono), q.name
    plain = views.queue_json("/", vh.queues["plain"], now, mono)
    assert (plain["messages_ready"], plain["messages_unacknowledged"], plain["messages"]) == (1, 1, 2)
    assert plain["idle_since"] == "2025-12-03T00:02:34.240+00:00"
    assert views.queue_json("/", vh.queues["args"], now, mono)["idle_since"] is None


def test_properties_key_is_rabbitmqs_quoted_key_and_hash_shape() -> None:
    assert views.properties_key("", {}) == "~"
    assert views.properties_key("a.b", {}) == "a.b"
    assert views.properties_key("a b~c/d", {}) == "a+b%7Ec%2Fd"  # as RabbitMQ 3.10 quotes it
    key = views.properties_key("k", {"x": "1"})
    assert key.startswith("k~") and len(key) == 8
    assert key == views.properties_key("k", {"x": "1"}) != views.properties_key("k", {"x": "2"})


def test_queue_counts_include_messages_paged_out_to_the_log() -> None:
    broker, clock = new_broker()
    vh = broker.vhosts["/"]
    q = vh.declare_queue("deep", connection=None, durable=True)
    vh.publish("", "deep", msg("in memory"))
    q.paged_count, q.paged_bytes = 7, 70  # as a durable queue's backlog paged out to its log reads
    view = views.queue_json("/", q, 0, clock.monotonic_ms())
    assert (view["messages_ready"], view["messages"], view["messages_paged_out"]) == (8, 8, 7)
    assert view["message_bytes"] == len("in memory") + 70
    assert json.loads(views.queue_text('"/"', q, 0, clock.monotonic_ms())) == view


def test_ok_list_encodes_a_long_list_in_slices_to_the_same_json() -> None:
    import asyncio

    from ferrymq.http.responses import ok_list

    items = [{"name": f"q{i}", "n": i, "t": "\u00e9"} for i in range(1234)]
    response = asyncio.run(ok_list(items))
    assert json.loads(response.body) == items  # type: ignore[arg-type]
    assert response.content_type == "application/json"
