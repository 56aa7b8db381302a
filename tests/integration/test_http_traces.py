"""Sampled message traces over real clients: pika publishes and consumes, the trace API tells the story."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")


@pytest.fixture()
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def traces(broker: EmbeddedBroker) -> dict[str, Any]:
    resp = requests.get(broker.http_url + "/api/ferrymq/traces", auth=AUTH, timeout=5)
    assert resp.status_code == 200
    return resp.json()


def events(trace: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["event"], e["queue"]) for e in trace["events"]]


def setup(ch: Any) -> None:
    ch.exchange_declare("t.dlx", "fanout")
    ch.queue_declare("t.dlq", durable=True)
    ch.queue_bind("t.dlq", "t.dlx")
    ch.queue_declare("t.work", durable=True, arguments={"x-dead-letter-exchange": "t.dlx"})


def consume_ack_then_reject(ch: Any) -> None:
    seen = []
    for method, _, body in ch.consume("t.work", inactivity_timeout=5):
        assert method is not None, "no delivery"
        seen.append(body)
        if body == b"one":
            ch.basic_ack(method.delivery_tag)
        else:
            ch.basic_reject(method.delivery_tag, requeue=False)
        if len(seen) == 2:
            break
    ch.cancel()


def lifecycle(broker: EmbeddedBroker) -> list[dict[str, Any]]:
    """The traces, newest first, once the dead letter's and the last publish's fsyncs are recorded."""
    deadline = time.monotonic() + 5
    while True:
        got = traces(broker)["traces"]
        if any(e["event"] == "stored" and e["queue"] == "t.dlq" for t in got for e in t["events"]) \
                and events(got[0])[-1][0] == "stored":
            return got
        assert time.monotonic() < deadline, got
        time.sleep(0.02)


def check_lifecycle(got: list[dict[str, Any]]) -> None:
    newest, oldest = got
    assert oldest["id"] < newest["id"]
    assert (oldest["vhost"], oldest["exchange"], oldest["routing_key"], oldest["size"]) == (
        "/", "", "t.work", 3)
    assert events(oldest) == [("published", None), ("routed", "t.work"), ("stored", "t.work"),
                              ("delivered", "t.work"), ("acked", "t.work")]
    assert events(newest) == [("published", None), ("routed", "t.work"), ("stored", "t.work"),
                              ("delivered", "t.work"), ("rejected", "t.work"),
                              ("dead_lettered", "t.work"), ("stored", "t.dlq")]
    at = [e["at_ms"] for e in newest["events"]]
    assert at == sorted(at) and abs(at[0] - time.time() * 1000) < 60_000
    delivered = newest["events"][3]["detail"]
    assert "consumer_tag=" in delivered and "delivery_count=1" in delivered
    assert "t.dlx" in newest["events"][5]["detail"]


def publish_two(broker: EmbeddedBroker, props: pika.BasicProperties) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.confirm_delivery()
    setup(ch)
    for body in (b"one", b"two"):
        ch.basic_publish("", "t.work", body, props)
    consume_ack_then_reject(ch)
    ch.basic_publish("", "t.work", b"untraced", pika.BasicProperties(delivery_mode=2))
    conn.close()


def test_a_marked_publisher_is_traced_through_ack_and_reject_to_the_dlx(broker: EmbeddedBroker) -> None:
    assert traces(broker) == {"sample_every": 0, "capacity": 1000, "traces": []}
    publish_two(broker, pika.BasicProperties(delivery_mode=2, headers={"x-ferrymq-trace": "1"}))
    got = lifecycle(broker)
    assert len(got) == 2  # the unmarked third message is not traced with sampling off
    check_lifecycle(got)


def test_sampling_every_message_shows_the_whole_lifecycle_in_order(broker: EmbeddedBroker) -> None:
    requests.put(broker.http_url + "/api/ferrymq/traces/config", json={"sample_every": 1},
                 auth=AUTH, timeout=5).raise_for_status()
    publish_two(broker, pika.BasicProperties(delivery_mode=2))
    got = lifecycle(broker)
    assert traces(broker)["sample_every"] == 1
    assert [e["event"] for e in got[0]["events"]] == ["published", "routed", "stored"]  # the third
    check_lifecycle(got[1:])
    one = requests.get(f"{broker.http_url}/api/ferrymq/traces/{got[1]['id']}", auth=AUTH, timeout=5)
    assert one.json() == got[1]


def test_config_refuses_bad_rates_and_delete_clears(broker: EmbeddedBroker) -> None:
    url = broker.http_url + "/api/ferrymq/traces"
    for bad in ({"sample_every": -1}, {"sample_every": "x"}, {}, {"sample_every": True}):
        resp = requests.put(url + "/config", json=bad, auth=AUTH, timeout=5)
        assert resp.status_code == 400 and resp.json()["error"] == "bad_request"
    assert requests.get(url + "/12345", auth=AUTH, timeout=5).status_code == 404
    assert requests.get(url + "/abc", auth=AUTH, timeout=5).status_code == 404
    requests.put(url + "/config", json={"sample_every": 1}, auth=AUTH, timeout=5).raise_for_status()
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    conn.channel().basic_publish("", "nowhere", b"x")
    conn.close()
    assert events(traces(broker)["traces"][0]) == [("published", None), ("routed", None)]
    assert requests.delete(url, auth=AUTH, timeout=5).status_code == 204
    assert traces(broker)["traces"] == []
    assert requests.get(url, timeout=5).status_code == 401
