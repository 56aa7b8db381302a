"""The dashboard's endpoints over real HTTP: login cookie, live stream, explainer, DLQ replay,
queue move; and that its connections and streams pages find what they show in the management API
(the dashboard's own duplicates of it are gone)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture()
def channel(broker: EmbeddedBroker) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    try:
        yield conn.channel()
    finally:
        if conn.is_open:
            conn.close()


def test_pages_are_public_but_data_needs_the_login_cookie(broker: EmbeddedBroker) -> None:
    s = requests.Session()
    root = s.get(broker.http_url + "/", allow_redirects=False)
    assert root.status_code == 302 and root.headers["Location"] == "/dashboard/"
    for page in ("", "queues", "routing", "traces", "dlq", "streams", "connections", "lab"):
        r = s.get(f"{broker.http_url}/dashboard/{page}")
        assert r.status_code == 200 and "/dashboard/static/app.js" in r.text
    assert s.get(broker.http_url + "/dashboard/static/app.js").status_code == 200
    assert s.get(broker.http_url + "/api/ferrymq/snapshot").status_code == 401
    assert s.get(broker.http_url + "/dashboard/login/status").json() == {"user": None}
    bad = s.post(broker.http_url + "/dashboard/login", data={"user": "guest", "password": "nope"})
    assert bad.status_code == 401 and "ferrymq-auth" not in s.cookies
    good = s.post(broker.http_url + "/dashboard/login", data={"user": "guest", "password": "guest"})
    assert good.status_code == 200
    cookie = good.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert s.get(broker.http_url + "/dashboard/login/status").json() == {"user": "guest"}
    assert s.get(broker.http_url + "/api/ferrymq/snapshot").status_code == 200


def _events(broker: EmbeddedBroker, n: int) -> list[dict]:
    out = []
    with requests.get(broker.http_url + "/api/ferrymq/live", auth=AUTH, stream=True, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith(b"data: "):
                out.append(json.loads(line[6:]))
                if len(out) == n:
                    return out
    return out


def test_live_stream_pushes_snapshots_with_rates_from_counter_deltas(broker: EmbeddedBroker, channel) -> None:
    channel.queue_declare("live-q")
    channel.confirm_delivery()
    first, second = None, None
    with requests.get(broker.http_url + "/api/ferrymq/live", auth=AUTH, stream=True, timeout=10) as r:
        lines = (json.loads(line[6:]) for line in r.iter_lines() if line.startswith(b"data: "))
        first = next(lines)
        for _ in range(20):
            channel.basic_publish("", "live-q", b"x")
        second = next(lines)
    row = next(q for q in second["queues"] if q["name"] == "live-q")
    assert row["ready"] == 20 and row["rates"]["published"] > 0
    assert second["totals"]["published_rate"] > 0 and second["totals"]["connections"] >= 1
    assert first["alarms"] == {"memory": False, "disk": False, "reason": "", "blocked_publishers": 0}
    channel.queue_delete("live-q")


def test_routing_explainer_answers_a_topic_question(broker: EmbeddedBroker, channel) -> None:
    channel.exchange_declare("orders", "topic")
    channel.queue_declare("orders-eu")
    channel.queue_bind("orders-eu", "orders", "orders.*.eu")
    r = requests.post(broker.http_url + "/api/ferrymq/route/%2F/orders", auth=AUTH,
                      json={"routing_key": "orders.new.eu", "headers": {}, "properties": {}})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"exchange", "routing_key", "steps", "queues", "streams", "alternate_exchange",
                         "unroutable", "dead_letter"}
    assert body["queues"] == ["orders-eu"] and body["unroutable"] is False
    binding = body["steps"][0]["bindings"][0]
    assert binding["matched"] is True and "'*' took 'new'" in binding["why"]
    missing = requests.post(broker.http_url + "/api/ferrymq/route/%2F/nope", auth=AUTH, json={})
    assert missing.status_code == 404
    bad = requests.post(broker.http_url + "/api/ferrymq/route/%2F/orders", auth=AUTH, data=b"{oops")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


def _wait(pred, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_dead_letter_peek_and_replay_back_to_the_original_queue(broker: EmbeddedBroker, channel) -> None:
    channel.queue_declare("jobs-dlq", durable=True)
    channel.queue_declare("jobs", durable=True, arguments={"x-dead-letter-exchange": "",
                                                           "x-dead-letter-routing-key": "jobs-dlq"})
    channel.basic_publish("", "jobs", b"job-1", pika.BasicProperties(delivery_mode=2))
    method, _, _ = channel.basic_get("jobs")
    channel.basic_reject(method.delivery_tag, requeue=False)
    url = broker.http_url + "/api/ferrymq/dlq"
    _wait(lambda: any(d["name"] == "jobs-dlq" and d["messages"] == 1
                      for d in requests.get(url, auth=AUTH).json()))
    listed = next(d for d in requests.get(url, auth=AUTH).json() if d["name"] == "jobs-dlq")
    assert listed == {"vhost": "/", "name": "jobs-dlq", "messages": 1, "sources": ["jobs"]}
    peek = requests.get(url + "/%2F/jobs-dlq/peek?count=5", auth=AUTH).json()
    assert [(m["payload"], m["original_queue"], m["reason"]) for m in peek] == [("job-1", "jobs", "rejected")]
    r = requests.post(url + "/%2F/jobs-dlq/replay", auth=AUTH, json={"count": None}).json()
    assert r == {"replayed": 1, "before": {"dlq": 1, "targets": {"jobs": 0}},
                 "after": {"dlq": 0, "targets": {"jobs": 1}}}
    assert "jobs" not in {d["name"] for d in requests.get(url, auth=AUTH).json()}  # replayed, not a DLQ
    method, props, body = channel.basic_get("jobs", auto_ack=True)
    assert body == b"job-1" and props.delivery_mode == 2 and props.headers["x-death"][0]["queue"] == "jobs"


def test_move_takes_ready_messages_to_another_queue_and_refuses_an_unknown_target(
    broker: EmbeddedBroker, channel,
) -> None:
    channel.queue_declare("act-a")
    channel.queue_declare("act-b")
    for _ in range(3):
        channel.basic_publish("", "act-a", b"hi")
    base = broker.http_url + "/api/ferrymq/queues/%2F/"
    moved = requests.post(base + "act-a/move", auth=AUTH, json={"to": "act-b", "count": 2}).json()
    assert moved == {"moved": 2, "source": 1, "target": 2}
    assert requests.post(base + "act-b/move", auth=AUTH, json={"to": "nowhere"}).status_code == 400
    assert requests.post(base + "gone/move", auth=AUTH, json={"to": "act-b"}).status_code == 404
    channel.queue_delete("act-a")
    channel.queue_delete("act-b")


def test_the_connections_page_reads_client_and_channel_prefetch_from_the_management_api(
    broker: EmbeddedBroker,
) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.basic_qos(prefetch_count=7)
    ch.queue_declare("conn-page-q")
    ch.basic_publish("", "conn-page-q", b"x")
    ch.basic_consume("conn-page-q", lambda *a: None)
    conn.process_data_events(time_limit=0.3)
    port = conn._impl._transport._sock.getsockname()[1]  # our side of the socket
    rows = requests.get(broker.http_url + "/api/connections", auth=AUTH).json()
    row = next(r for r in rows if r.get("peer_port") == port)
    assert row["protocol"] == "AMQP 0-9-1" and row["user"] == "guest"
    assert row["client_properties"]["product"] == "Pika Python Client Library"
    chans = [c for c in requests.get(broker.http_url + "/api/channels", auth=AUTH).json()
             if c["connection_details"]["name"] == row["name"]]
    assert [(c["number"], c["prefetch_count"], c["messages_unacknowledged"]) for c in chans] == [(1, 7, 1)]
    ch.queue_delete("conn-page-q")
    conn.close()


@pytest.mark.parametrize("method,path", [("GET", "/api/ferrymq/dashboard/connections"),
                                         ("POST", "/api/ferrymq/connections/close"),
                                         ("GET", "/api/ferrymq/dashboard/kafka")])
def test_the_dashboards_duplicates_of_the_management_api_are_gone(
    broker: EmbeddedBroker, method: str, path: str,
) -> None:
    r = requests.request(method, broker.http_url + path, auth=AUTH, json={"name": "x"})
    assert r.status_code in (404, 405)


def test_an_open_live_stream_does_not_hold_up_broker_shutdown() -> None:
    import threading

    b = EmbeddedBroker().start()
    got_one = threading.Event()

    def read() -> None:
        try:
            with requests.get(b.http_url + "/api/ferrymq/live", auth=AUTH, stream=True, timeout=30) as r:
                for line in r.iter_lines():
                    if line.startswith(b"data: "):
                        got_one.set()
        except requests.RequestException:
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert got_one.wait(5)
    started = time.monotonic()
    b.stop()
    assert time.monotonic() - started < 3
    reader.join(5)


def test_the_streams_page_reads_partition_offsets_and_group_lag_from_the_kafka_api(
    broker: EmbeddedBroker,
) -> None:
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=broker.kafka_bootstrap)
    for i in range(10):
        producer.send("dash-topic", value=b"%d" % i, partition=0)
    producer.flush()
    consumer = KafkaConsumer("dash-topic", bootstrap_servers=broker.kafka_bootstrap, group_id="dash-group",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    got = 0
    deadline = time.monotonic() + 15
    while got < 10 and time.monotonic() < deadline:
        got += sum(len(v) for v in consumer.poll(timeout_ms=500).values())
    consumer.commit()
    consumer.close()
    for _ in range(5):
        producer.send("dash-topic", value=b"more", partition=0)
    producer.flush()
    producer.close()
    topics = requests.get(broker.http_url + "/api/ferrymq/kafka/topics?sort=name", auth=AUTH).json()
    topic = next(t for t in topics if t["name"] == "dash-topic")
    p0 = topic["partition_details"][0]
    assert (p0["partition"], p0["log_start_offset"], p0["log_end_offset"]) == (0, 0, 15)
    assert topic["partitions"] == 1 and topic["retention"]["ms"] and topic["cleanup_policy"] == "delete"
    groups = requests.get(broker.http_url + "/api/ferrymq/kafka/groups", auth=AUTH).json()
    assert "dash-group" in {g["group_id"] for g in groups}
    group = requests.get(broker.http_url + "/api/ferrymq/kafka/groups/dash-group", auth=AUTH).json()
    assert [(o["topic"], o["partition"], o["committed_offset"], o["log_end_offset"], o["lag"])
            for o in group["offsets"]] == [("dash-topic", 0, 10, 15, 5)]


def test_snapshot_with_many_queues_sends_the_deepest_rows_and_totals_over_all(
    broker: EmbeddedBroker,
) -> None:
    from ferrymq import limits

    def declare(n: int) -> None:
        vhost = broker.running.broker.vhosts["/"]
        for i in range(n):
            vhost.declare_queue(f"many-{i:05d}", connection=None)

    broker.call(declare, 3000)
    deep = requests.post(broker.http_url + "/api/exchanges/%2F/amq.default/publish", auth=AUTH,
                         json={"routing_key": "many-02999", "payload": "x", "payload_encoding": "string",
                               "properties": {}})
    assert deep.json() == {"routed": True}
    snap = requests.get(broker.http_url + "/api/ferrymq/snapshot", auth=AUTH).json()
    assert snap["totals"]["queues"] >= 3000 and snap["queues_shown"] == limits.HTTP_LIVE_QUEUE_ROWS_MAX
    assert snap["queues"][0]["name"] == "many-02999" and snap["queues"][0]["ready"] == 1
