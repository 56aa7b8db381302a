"""Per-vhost and per-user limits over RabbitMQ's management API (/api/vhost-limits, /api/user-limits),
enforced on real pika connections with RabbitMQ 3.10's codes and texts, and kept across a restart."""

from __future__ import annotations

import re
from pathlib import Path

import pika
import pika.exceptions
import pytest
import requests

from ferrymq import EmbeddedBroker
from tests.support.fixtures import kept_data_dir_broker

AUTH = ("guest", "guest")


data_dir, broker = kept_data_dir_broker("limits")


def _api(broker: EmbeddedBroker, method: str, path: str, body: object = None) -> requests.Response:
    return requests.request(method, f"{broker.http_url}{path}", json=body, auth=AUTH, timeout=5)


def _params(broker: EmbeddedBroker, vhost: str = "/", user: str = "guest",
            password: str = "guest") -> pika.ConnectionParameters:
    return pika.ConnectionParameters("127.0.0.1", broker.amqp_port, vhost,
                                     pika.PlainCredentials(user, password))


def _refusal(params: pika.ConnectionParameters) -> tuple[int, str]:
    with pytest.raises(pika.exceptions.AMQPConnectionError) as info:
        pika.BlockingConnection(params)
    found = re.search(r'\((\d+)\) "(.*)"', str(info.value))  # pika keeps the close only as text
    assert found, str(info.value)
    return int(found.group(1)), found.group(2)


def test_vhost_max_connections_refuses_the_next_connection_with_rabbitmqs_text(broker) -> None:
    assert _api(broker, "PUT", "/api/vhosts/lim-c").status_code == 201
    assert _api(broker, "PUT", "/api/vhost-limits/lim-c/max-connections", {"value": 1}).status_code == 204
    first = pika.BlockingConnection(_params(broker, "lim-c"))
    assert _refusal(_params(broker, "lim-c")) == (
        530, "NOT_ALLOWED - access to vhost 'lim-c' refused for user 'guest': "
        "connection limit (1) is reached")
    first.close()
    pika.BlockingConnection(_params(broker, "lim-c")).close()  # the one slot is free again
    assert _api(broker, "GET", "/api/vhost-limits/lim-c").json() == [
        {"vhost": "lim-c", "value": {"max-connections": 1}}]


def test_vhost_max_queues_refuses_a_new_queue_with_406_but_not_a_redeclare(broker) -> None:
    assert _api(broker, "PUT", "/api/vhosts/lim-q").status_code == 201
    assert _api(broker, "PUT", "/api/vhost-limits/lim-q/max-queues", {"value": 1}).status_code == 204
    conn = pika.BlockingConnection(_params(broker, "lim-q"))
    ch = conn.channel()
    ch.queue_declare("q1")
    ch.queue_declare("q1")  # already there: not a new queue
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        ch.queue_declare("q2")
    assert (info.value.reply_code, info.value.reply_text) == (
        406, "PRECONDITION_FAILED - cannot declare queue 'q2': queue limit in vhost 'lim-q' (1) is reached")
    assert _api(broker, "DELETE", "/api/vhost-limits/lim-q/max-queues").status_code == 204
    conn.channel().queue_declare("q2")  # the limit is gone
    conn.close()


def test_user_max_connections_and_max_channels_refuse_with_rabbitmqs_texts(broker) -> None:
    assert _api(broker, "PUT", "/api/users/lu", {"password": "pw", "tags": ""}).status_code == 201
    perms = {"configure": ".*", "write": ".*", "read": ".*"}
    assert _api(broker, "PUT", "/api/permissions/%2F/lu", perms).status_code in (201, 204)
    assert _api(broker, "PUT", "/api/user-limits/lu/max-connections", {"value": 1}).status_code == 204
    assert _api(broker, "PUT", "/api/user-limits/lu/max-channels", {"value": 2}).status_code == 204
    conn = pika.BlockingConnection(_params(broker, user="lu", password="pw"))
    assert _refusal(_params(broker, user="lu", password="pw")) == (
        530, "NOT_ALLOWED - connection refused for user 'lu': user connection limit (1) is reached")
    conn.channel()
    conn.channel()
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as info:
        conn.channel()
    assert (info.value.reply_code, info.value.reply_text) == (
        530, "NOT_ALLOWED - number of channels opened for user 'lu' has reached the maximum allowed "
        "user limit of (2)")
    assert _api(broker, "GET", "/api/user-limits/lu").json() == [
        {"user": "lu", "value": {"max-connections": 1, "max-channels": 2}}]


def test_unknown_limit_names_and_objects_are_refused(broker) -> None:
    bad = _api(broker, "PUT", "/api/vhost-limits/%2F/max-channels", {"value": 1})
    assert bad.status_code == 400 and "Unrecognised terms" in bad.json()["reason"]
    assert _api(broker, "PUT", "/api/vhost-limits/%2F/max-queues", {"value": "x"}).status_code == 400
    assert _api(broker, "PUT", "/api/vhost-limits/%2F/max-queues", {}).status_code == 400
    assert _api(broker, "PUT", "/api/user-limits/nobody/max-channels", {"value": 1}).status_code == 404
    assert _api(broker, "DELETE", "/api/vhost-limits/%2F/max-queues").status_code == 204  # none set: 204
    assert _api(broker, "DELETE", "/api/vhost-limits/nowhere/max-queues").status_code == 404


def test_limits_travel_in_definitions_as_rabbitmq_exports_them(broker) -> None:
    assert _api(broker, "PUT", "/api/vhosts/lim-d").status_code == 201
    assert _api(broker, "PUT", "/api/vhost-limits/lim-d/max-queues", {"value": 3}).status_code == 204
    assert _api(broker, "PUT", "/api/users/du", {"password": "pw", "tags": ""}).status_code == 201
    assert _api(broker, "PUT", "/api/user-limits/du/max-channels", {"value": 4}).status_code == 204
    defs = _api(broker, "GET", "/api/definitions").json()
    assert {"value": {"max-queues": 3}, "vhost": "lim-d", "component": "vhost-limits",
            "name": "limits"} in defs["parameters"]
    assert next(u for u in defs["users"] if u["name"] == "du")["limits"] == {"max-channels": 4}
    assert _api(broker, "GET", "/api/users/du").json()["limits"] == {"max-channels": 4}
    body = {"users": [{"name": "du2", "password": "pw", "tags": "", "limits": {"max-connections": 2}}],
            "vhosts": [{"name": "lim-d2"}],
            "parameters": [{"value": {"max-connections": 9}, "vhost": "lim-d2", "component": "vhost-limits",
                            "name": "limits"}]}
    assert _api(broker, "POST", "/api/definitions", body).status_code == 204
    assert _api(broker, "GET", "/api/user-limits/du2").json() == [
        {"user": "du2", "value": {"max-connections": 2}}]
    assert _api(broker, "GET", "/api/vhost-limits/lim-d2").json() == [
        {"vhost": "lim-d2", "value": {"max-connections": 9}}]


def test_limits_survive_a_restart(broker, data_dir: Path) -> None:
    assert _api(broker, "PUT", "/api/vhosts/lim-r").status_code == 201
    assert _api(broker, "PUT", "/api/vhost-limits/lim-r/max-queues", {"value": 0}).status_code == 204
    broker.stop()
    with EmbeddedBroker(data_dir=str(data_dir)) as again:
        rows = _api(again, "GET", "/api/vhost-limits").json()
        assert {"vhost": "lim-r", "value": {"max-queues": 0}} in rows
        conn = pika.BlockingConnection(_params(again, "lim-r"))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            conn.channel().queue_declare("any")
        assert info.value.reply_code == 406
        conn.close()
