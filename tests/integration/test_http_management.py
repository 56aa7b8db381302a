"""RabbitMQ's management API (part 1: overview, vhosts, users, permissions, queues, exchanges,
bindings) over real HTTP against an EmbeddedBroker, with RabbitMQ 3.10's codes and bodies."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

AUTH = ("guest", "guest")
NOT_FOUND = {"error": "Object Not Found", "reason": "Not Found"}


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


@pytest.fixture
def api(broker: EmbeddedBroker) -> Iterator[requests.Session]:
    s = requests.Session()
    s.auth = AUTH
    s.base = broker.http_url + "/api"  # type: ignore[attr-defined]
    yield s
    s.close()


def url(api: requests.Session, path: str) -> str:
    return api.base + path  # type: ignore[attr-defined,no-any-return]


def test_no_credentials_is_an_empty_401_and_wrong_ones_say_login_failed(broker: EmbeddedBroker) -> None:
    r = requests.get(broker.http_url + "/api/overview")
    assert r.status_code == 401 and r.text == ""
    assert r.headers["WWW-Authenticate"] == 'Basic realm="RabbitMQ Management"'
    r = requests.get(broker.http_url + "/api/overview", auth=("guest", "wrong"))
    assert r.status_code == 401
    assert r.json() == {"error": "not_authorized", "reason": "Login failed"}


def test_queue_declare_show_redeclare_and_inequivalent(api: requests.Session) -> None:
    assert api.put(url(api, "/queues/%2F/hq1"), json={"durable": True,
                                                      "arguments": {"x-max-length": 5}}).status_code == 201
    assert api.put(url(api, "/queues/%2F/hq1"), json={"durable": True,
                                                      "arguments": {"x-max-length": 5}}).status_code == 204
    r = api.put(url(api, "/queues/%2F/hq1"), json={"durable": False, "arguments": {"x-max-length": 5}})
    assert r.status_code == 400
    assert r.json() == {"error": "bad_request", "reason": "inequivalent arg 'durable' for queue 'hq1' in "
                        "vhost '/': received 'false' but current is 'true'"}
    q = api.get(url(api, "/queues/%2F/hq1")).json()
    assert (q["name"], q["vhost"], q["durable"], q["exclusive"], q["type"]) == ("hq1", "/", True, False,
                                                                                "classic")
    assert q["arguments"] == {"x-max-length": 5} and q["messages_ready"] == 0 and q["policy"] is None
    assert api.delete(url(api, "/queues/%2F/hq1")).status_code == 204


def test_unknown_objects_are_rabbitmq_404s_and_bad_json_is_400(api: requests.Session) -> None:
    for path in ("/queues/%2F/nope", "/queues/novhost", "/exchanges/%2F/nope", "/vhosts/nope",
                 "/users/nobody", "/bindings/%2F/e/nope/q/nope", "/permissions/%2F/nobody"):
        r = api.get(url(api, path))
        assert (r.status_code, r.json()) == (404, NOT_FOUND), path
    assert api.delete(url(api, "/queues/%2F/nope")).status_code == 404
    r = api.put(url(api, "/queues/%2F/bad"), data=b"{bad", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"error": "bad_request", "reason": "not_json"})


def test_publish_get_with_ackmodes_purge_and_if_empty(api: requests.Session) -> None:
    api.put(url(api, "/queues/%2F/hq2"), json={})
    pub = url(api, "/exchanges/%2F/amq.default/publish")
    body = {"properties": {"delivery_mode": 2, "headers": {"h": 1}}, "routing_key": "hq2",
            "payload": "hello", "payload_encoding": "string"}
    assert api.post(pub, json=body).json() == {"routed": True}
    assert api.post(pub, json={**body, "properties": {}, "payload": "/w==",
                               "payload_encoding": "base64"}).json() == {"routed": True}
    assert api.post(pub, json={**body, "routing_key": "nowhere"}).json() == {"routed": False}
    r = api.post(pub, json={"routing_key": "x", "properties": {}, "payload": "x"})
    assert r.json()["reason"] == "[{key_missing,payload_encoding}]"
    r = api.delete(url(api, "/queues/%2F/hq2?if-empty=true"))
    assert r.status_code == 400 and r.json()["reason"] == "queue 'hq2' in vhost '/' not empty"
    get = url(api, "/queues/%2F/hq2/get")
    got = api.post(get, json={"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto"}).json()
    assert [m["payload"] for m in got] == ["hello", "/w=="]
    assert [m["payload_encoding"] for m in got] == ["string", "base64"]
    assert [m["message_count"] for m in got] == [1, 0]
    assert got[0]["properties"] == {"delivery_mode": 2, "headers": {"h": 1}} and got[1]["properties"] == []
    again = api.post(get, json={"count": 1, "ackmode": "ack_requeue_false", "encoding": "base64"}).json()
    assert again[0]["redelivered"] is True and again[0]["payload"] == "aGVsbG8="
    assert api.get(url(api, "/queues/%2F/hq2")).json()["messages_ready"] == 1
    assert api.delete(url(api, "/queues/%2F/hq2/contents")).status_code == 204
    assert api.get(url(api, "/queues/%2F/hq2")).json()["messages"] == 0
    api.delete(url(api, "/queues/%2F/hq2"))


def test_http_publish_reaches_an_amqp_consumer(api: requests.Session, broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("hq3")
    api.post(url(api, "/exchanges/%2F/amq.default/publish"),
             json={"properties": {}, "routing_key": "hq3", "payload": "via http",
                   "payload_encoding": "string"})
    for method, _props, body in ch.consume("hq3", auto_ack=True, inactivity_timeout=5):
        assert method is not None and body == b"via http"
        break
    ch.cancel()
    conn.close()
    api.delete(url(api, "/queues/%2F/hq3"))


def test_exchanges_default_one_declare_inequivalent_and_reserved(api: requests.Session) -> None:
    names = [e["name"] for e in api.get(url(api, "/exchanges/%2F")).json()]
    assert "" in names and "amq.topic" in names
    assert api.get(url(api, "/exchanges/%2F/amq.default")).json()["name"] == ""
    assert api.put(url(api, "/exchanges/%2F/hx1"), json={"type": "topic", "durable": True}).status_code == 201
    r = api.put(url(api, "/exchanges/%2F/hx1"), json={"type": "direct", "durable": True})
    assert r.json()["reason"] == ("inequivalent arg 'type' for exchange 'hx1' in vhost '/': received "
                                  "'direct' but current is 'topic'")
    r = api.put(url(api, "/exchanges/%2F/hx2"), json={"type": "bogus"})
    assert (r.status_code, r.json()["reason"]) == (400, "unknown exchange type 'bogus'")
    r = api.delete(url(api, "/exchanges/%2F/amq.direct"))
    assert (r.status_code, r.json()) == (401, {"error": "not_authorised", "reason": "Access refused."})
    assert api.delete(url(api, "/exchanges/%2F/hx1")).status_code == 204
    assert api.delete(url(api, "/exchanges/%2F/hx1")).status_code == 404


def test_bindings_queue_and_exchange_with_properties_keys(api: requests.Session) -> None:
    api.put(url(api, "/queues/%2F/hq4"), json={})
    api.put(url(api, "/exchanges/%2F/hx3"), json={"type": "topic"})
    r = api.post(url(api, "/bindings/%2F/e/hx3/q/hq4"), json={"routing_key": "a.b"})
    assert (r.status_code, r.headers["Location"]) == (201, "hq4/a.b")
    r = api.post(url(api, "/bindings/%2F/e/hx3/q/hq4"), json={"routing_key": "a b/c"})
    assert r.headers["Location"] == "hq4/a%2Bb%252Fc"
    assert api.post(url(api, "/bindings/%2F/e/hx3/q/hq4"), json={}).headers["Location"] == "hq4/~"
    r = api.post(url(api, "/bindings/%2F/e/hx3/q/hq4"), json={"routing_key": "k", "arguments": {"x": "1"}})
    key = r.headers["Location"].split("/", 1)[1]
    assert key.startswith("k~") and len(key) == 8
    pair = api.get(url(api, "/bindings/%2F/e/hx3/q/hq4")).json()
    assert sorted(b["properties_key"] for b in pair) == sorted(["a.b", "a+b%2Fc", "~", key])
    one = api.get(url(api, f"/bindings/%2F/e/hx3/q/hq4/{key}")).json()
    assert one["arguments"] == {"x": "1"} and one["destination_type"] == "queue"
    own = api.get(url(api, "/queues/%2F/hq4/bindings")).json()
    assert own[0] == {"source": "", "vhost": "/", "destination": "hq4", "destination_type": "queue",
                      "routing_key": "hq4", "arguments": {}, "properties_key": "hq4"}
    r = api.post(url(api, "/exchanges/%2F/hx3/publish"), json={
        "properties": {}, "routing_key": "a.b", "payload": "x", "payload_encoding": "string"})
    assert r.json()["routed"]
    assert api.delete(url(api, "/bindings/%2F/e/hx3/q/hq4/a.b")).status_code == 204
    assert api.get(url(api, "/bindings/%2F/e/hx3/q/hq4/a.b")).status_code == 404
    r = api.post(url(api, "/bindings/%2F/e/amq.default/q/hq4"), json={"routing_key": "x"})
    assert r.status_code == 401
    assert api.post(url(api, "/bindings/%2F/e/amq.topic/e/hx3"),
                    json={"routing_key": "z"}).headers["Location"] == "hx3/z"
    dest = api.get(url(api, "/exchanges/%2F/hx3/bindings/destination")).json()
    assert [(b["source"], b["destination_type"]) for b in dest] == [("amq.topic", "exchange")]
    assert len(api.get(url(api, "/exchanges/%2F/hx3/bindings/source")).json()) == 3
    assert any(b["source"] == "hx3" for b in api.get(url(api, "/bindings")).json())
    api.delete(url(api, "/exchanges/%2F/hx3"))
    api.delete(url(api, "/queues/%2F/hq4"))


def test_list_parameters_and_rabbitmq_pagination_errors(api: requests.Session) -> None:
    for i in range(3):
        api.put(url(api, f"/queues/%2F/page-{i}"), json={})
    page = api.get(url(api, "/queues?page=1&page_size=2&name=page-&columns=name,messages")).json()
    assert page["items"] == [{"name": "page-0", "messages": 0}, {"name": "page-1", "messages": 0}]
    assert (page["page_count"], page["filtered_count"]) == (2, 3)
    r = api.get(url(api, "/queues?page=9"))
    assert r.json()["error"] == "page_out_of_range"
    r = api.get(url(api, "/queues?page=1&page_size=501"))
    assert r.json()["error"] == "invalid_pagination_parameters"
    for i in range(3):
        api.delete(url(api, f"/queues/%2F/page-{i}"))


def test_overview_counts_and_rates(api: requests.Session) -> None:
    api.put(url(api, "/queues/%2F/hq5"), json={})
    first = api.get(url(api, "/overview")).json()
    for _ in range(4):
        api.post(url(api, "/exchanges/%2F/amq.default/publish"), json={
            "properties": {}, "routing_key": "hq5", "payload": "x", "payload_encoding": "string"})
    time.sleep(0.05)
    ov = api.get(url(api, "/overview")).json()
    assert ov["message_stats"]["publish"] - first["message_stats"]["publish"] == 4
    assert ov["message_stats"]["publish_details"]["rate"] > 0
    assert ov["queue_totals"]["messages_ready"] >= 4 and ov["object_totals"]["queues"] >= 1
    assert {"amqp", "http", "kafka"} <= {lst["protocol"] for lst in ov["listeners"]}
    assert api.get(url(api, "/whoami")).json() == {"name": "guest", "tags": ["administrator"]}
    api.delete(url(api, "/queues/%2F/hq5"))


def test_vhosts_users_and_permissions(api: requests.Session, broker: EmbeddedBroker) -> None:
    assert api.put(url(api, "/vhosts/hv"), json={}).status_code == 201
    assert api.put(url(api, "/vhosts/hv"), json={}).status_code == 204
    assert api.put(url(api, "/queues/hv/inside"), json={}).status_code == 201
    assert api.put(url(api, "/users/hu"), json={"password": "pw", "tags": "management"}).status_code == 201
    assert api.get(url(api, "/users/hu")).json()["name"] == "hu"
    perm = {"configure": ".*", "write": "^w", "read": ".*"}
    assert api.put(url(api, "/permissions/hv/hu"), json=perm).status_code == 201
    assert api.put(url(api, "/permissions/hv/hu"), json=perm).status_code == 204
    assert api.get(url(api, "/permissions/hv/hu")).json() == {"user": "hu", "vhost": "hv", **perm}
    assert [p["vhost"] for p in api.get(url(api, "/users/hu/permissions")).json()] == ["hv"]
    # the creator (guest) was granted the new vhost, as by rabbit_vhost:maybe_grant_full_permissions
    assert [p["user"] for p in api.get(url(api, "/vhosts/hv/permissions")).json()] == ["guest", "hu"]
    r = api.put(url(api, "/permissions/hv/hu"), json={"configure": ".*"})
    assert r.json()["reason"] == "[{key_missing,write},{key_missing,read}]"
    r = api.put(url(api, "/permissions/hv/nobody"), json=perm)
    assert r.json()["reason"] == "vhost_or_user_not_found"
    assert requests.get(broker.http_url + "/api/whoami", auth=("hu", "pw")).json()["name"] == "hu"
    assert api.delete(url(api, "/vhosts/hv")).status_code == 204
    assert api.get(url(api, "/vhosts/hv")).status_code == 404
    assert api.get(url(api, "/permissions/hv/hu")).status_code == 404
    assert api.delete(url(api, "/users/hu")).status_code == 204
    assert api.delete(url(api, "/users/hu")).status_code == 404


def test_exclusive_queue_shows_exclusive_and_can_be_deleted_over_http(
        api: requests.Session, broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    conn.channel().queue_declare("hexcl", exclusive=True)
    assert api.get(url(api, "/queues/%2F/hexcl")).json()["exclusive"] is True
    assert api.delete(url(api, "/queues/%2F/hexcl")).status_code == 204
    conn.close()


def test_durable_queue_declared_over_http_survives_a_restart(tmp_path: object) -> None:
    settings = {"data_dir": str(tmp_path)}
    with EmbeddedBroker(**settings) as b:
        requests.put(b.http_url + "/api/queues/%2F/survivor", json={"durable": True}, auth=AUTH)
        requests.put(b.http_url + "/api/exchanges/%2F/sx", json={"type": "fanout", "durable": True},
                     auth=AUTH)
        requests.post(b.http_url + "/api/bindings/%2F/e/sx/q/survivor", json={}, auth=AUTH)
        requests.post(b.http_url + "/api/exchanges/%2F/sx/publish", auth=AUTH, json={
            "properties": {"delivery_mode": 2}, "routing_key": "", "payload": "kept",
            "payload_encoding": "string"})
        time.sleep(0.2)
    with EmbeddedBroker(**settings) as b:
        q = requests.get(b.http_url + "/api/queues/%2F/survivor", auth=AUTH).json()
        assert q["durable"] is True and q["messages_ready"] == 1
        pair = requests.get(b.http_url + "/api/bindings/%2F/e/sx/q/survivor", auth=AUTH).json()
        assert len(pair) == 1
