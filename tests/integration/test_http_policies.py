"""/api/policies against the embedded broker with a real pika client making the objects: policies
apply live to existing queues (max-length drops at once, message-ttl expires what is published
after, the DLX receives what the policy drops), clearing restores, and policies survive a restart."""

from __future__ import annotations

import json
import subprocess
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


def _put(broker: EmbeddedBroker, name: str, body: dict) -> requests.Response:
    return requests.put(f"{broker.http_url}/api/policies/%2F/{name}", json=body, auth=AUTH, timeout=5)


def _count(ch: pika.adapters.blocking_connection.BlockingChannel, queue: str) -> int:
    return ch.queue_declare(queue, passive=True).method.message_count


def test_max_length_policy_drops_existing_messages_to_the_policy_dlx(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.exchange_declare("pol-dlx", "fanout")
    ch.queue_declare("pol-dead")
    ch.queue_bind("pol-dead", "pol-dlx")
    ch.queue_declare("pol-q1")
    for i in range(5):
        ch.basic_publish("", "pol-q1", str(i).encode())
    r = _put(broker, "limit", {"pattern": "^pol-q1$", "apply-to": "queues",
                               "definition": {"max-length": 2, "dead-letter-exchange": "pol-dlx"}})
    assert r.status_code == 201
    assert (_count(ch, "pol-q1"), _count(ch, "pol-dead")) == (2, 3)
    assert ch.basic_get("pol-q1", auto_ack=True)[2] == b"3"
    assert broker.call(lambda: broker.running.broker.vhosts["/"].queues["pol-q1"].policy.name) == "limit"
    assert requests.delete(f"{broker.http_url}/api/policies/%2F/limit", auth=AUTH,
                           timeout=5).status_code == 204
    for i in range(4):
        ch.basic_publish("", "pol-q1", str(i).encode())
    assert _count(ch, "pol-q1") == 5
    conn.close()


def test_message_ttl_policy_expires_later_messages_and_update_answers_204(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("pol-ttl")
    first = _put(broker, "ttl", {"pattern": "^pol-ttl$", "definition": {"message-ttl": 6000}})
    assert first.status_code == 201
    assert _put(broker, "ttl", {"pattern": "^pol-ttl$", "definition": {"message-ttl": 50}}).status_code == 204
    ch.basic_publish("", "pol-ttl", b"x")
    time.sleep(0.3)
    assert _count(ch, "pol-ttl") == 0
    got = requests.get(f"{broker.http_url}/api/policies/%2F/ttl", auth=AUTH, timeout=5).json()
    assert got == {"vhost": "/", "name": "ttl", "pattern": "^pol-ttl$", "apply-to": "all",
                   "definition": {"message-ttl": 50}, "priority": 0}
    requests.delete(f"{broker.http_url}/api/policies/%2F/ttl", auth=AUTH, timeout=5)
    conn.close()


def test_bad_policy_bodies_are_400_with_rabbitmq_reasons_and_unknown_is_404(broker: EmbeddedBroker) -> None:
    r = _put(broker, "bad", {"pattern": "^q", "definition": {"foo": 1}})
    assert r.status_code == 400
    reason = 'Validation failed\n\n[{&lt;&lt;"foo"&gt;&gt;,1}] are not recognised policy settings\n'
    assert r.json() == {"error": "bad_request", "reason": reason}
    missing = _put(broker, "bad", {"definition": {"max-length": 1}}).json()
    assert missing["reason"] == "[{key_missing,pattern}]"
    assert requests.get(f"{broker.http_url}/api/policies/%2F/nope", auth=AUTH, timeout=5).status_code == 404
    assert requests.get(f"{broker.http_url}/api/policies/novhost", auth=AUTH, timeout=5).status_code == 404


def test_policies_survive_a_restart(tmp_path: pytest.TempPathFactory) -> None:
    body = {"pattern": "^k", "definition": {"max-length": 1}, "priority": 3, "apply-to": "queues"}
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert _put(b, "keep", body).status_code == 201
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        got = requests.get(f"{b.http_url}/api/policies", auth=AUTH, timeout=5).json()
        assert got == [{"vhost": "/", "name": "keep", "pattern": "^k", "apply-to": "queues",
                        "definition": {"max-length": 1}, "priority": 3}]
        conn = pika.BlockingConnection(pika.URLParameters(b.amqp_url))
        ch = conn.channel()
        ch.queue_declare("k1")
        for i in range(3):
            ch.basic_publish("", "k1", str(i).encode())
        assert _count(ch, "k1") == 1
        conn.close()


def test_rabbitmqadmin_declares_lists_and_deletes_policies(broker: EmbeddedBroker) -> None:
    admin = ["rabbitmqadmin", "-H", "127.0.0.1", "-P", str(broker.http_port), "-f", "raw_json"]
    subprocess.run([*admin, "declare", "policy", "name=adm", "pattern=^adm-", 'definition={"max-length":1}',
                    "apply-to=queues", "priority=4"], check=True, capture_output=True, timeout=20)
    listed = json.loads(subprocess.run([*admin, "list", "policies"], check=True, capture_output=True,
                                       text=True, timeout=20).stdout)
    assert {"vhost": "/", "name": "adm", "pattern": "^adm-", "apply-to": "queues",
            "definition": {"max-length": 1}, "priority": 4} in listed
    subprocess.run([*admin, "delete", "policy", "name=adm"], check=True, capture_output=True, timeout=20)
    assert requests.get(f"{broker.http_url}/api/policies/%2F/adm", auth=AUTH, timeout=5).status_code == 404
