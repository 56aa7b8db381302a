"""/api/definitions: export and import in RabbitMQ's format, proven with rabbitmqadmin between two
FerryMQ brokers and in both directions with a real RabbitMQ 3.10; plus a differential test of a
policy applied live (same observed queue behaviour and effective_policy_definition)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import RabbitNode, available, start_rabbitmq

AUTH = ("guest", "guest")
KEYS = ("policies", "queues", "exchanges", "bindings")


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitNode]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests skipped")
    node = start_rabbitmq(management=True)
    try:
        yield node
    finally:
        node.stop()


def _topology(base: str, vhost: str) -> None:
    """The same topology, declared over the management API (RabbitMQ's and FerryMQ's)."""
    v = requests.utils.quote(vhost, safe="")
    calls = [
        (f"/api/vhosts/{v}", {}),
        (f"/api/exchanges/{v}/d-x", {"type": "topic", "durable": True,
                                     "arguments": {"alternate-exchange": "d-ae"}}),
        (f"/api/exchanges/{v}/d-ae", {"type": "fanout", "durable": True}),
        (f"/api/queues/{v}/d-q", {"durable": True, "arguments": {"x-max-length": 5}}),
        (f"/api/policies/{v}/d-p", {"pattern": "^d-q$", "definition": {"message-ttl": 1000}, "priority": 2,
                                    "apply-to": "queues"}),
    ]
    for path, body in calls:
        r = requests.put(base + path, json=body, auth=AUTH, timeout=10)
        assert r.status_code in (201, 204), (path, r.text)
    r = requests.post(f"{base}/api/bindings/{v}/e/d-x/q/d-q", json={"routing_key": "a.#"}, auth=AUTH,
                      timeout=10)
    assert r.status_code == 201, r.text


def _ferry_topology(fm: EmbeddedBroker, vhost: str) -> None:
    """The same topology on FerryMQ, through the core (the vhost/exchange/queue/binding endpoints
    belong to another module) and /api/policies."""
    def declare() -> None:
        v = fm.running.broker.add_vhost(vhost)  # type: ignore[union-attr]
        v.declare_exchange("d-x", "topic", durable=True, arguments={"alternate-exchange": "d-ae"})
        v.declare_exchange("d-ae", "fanout", durable=True)
        v.declare_queue("d-q", connection=None, durable=True, arguments={"x-max-length": 5})
        v.bind("d-q", "d-x", "a.#", {}, to_exchange=False, connection=None)
    fm.call(declare)
    r = requests.put(f"{fm.http_url}/api/policies/{requests.utils.quote(vhost, safe='')}/d-p", auth=AUTH,
                     json={"pattern": "^d-q$", "definition": {"message-ttl": 1000}, "priority": 2,
                           "apply-to": "queues"}, timeout=10)
    assert r.status_code == 201, r.text


def _ours(defs: dict[str, Any], vhost: str) -> dict[str, list[Any]]:
    """The objects of one vhost, comparable across brokers (sorted, vhost-tagged)."""
    out = {}
    for key in KEYS:
        items = [i for i in defs[key] if i.get("vhost") == vhost]
        out[key] = sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
    return out


def _defs(base: str) -> dict[str, Any]:
    return requests.get(f"{base}/api/definitions", auth=AUTH, timeout=10).json()


def _post(base: str, defs: dict[str, Any]) -> None:
    r = requests.post(f"{base}/api/definitions", data=json.dumps(defs), auth=AUTH, timeout=30,
                      headers={"content-type": "application/json"})
    assert r.status_code in (201, 204), r.text


def test_rabbitmqadmin_export_then_import_carries_topology_and_hashed_users(tmp_path: Path) -> None:
    path = tmp_path / "defs.json"
    with EmbeddedBroker() as a:
        _ferry_topology(a, "/")
        subprocess.run(["rabbitmqadmin", "-H", "127.0.0.1", "-P", str(a.http_port), "export", str(path)],
                       check=True, capture_output=True, timeout=20)
        exported = _ours(_defs(a.http_url), "/")
    raw = json.loads(path.read_text())
    guest = next(u for u in raw["users"] if u["name"] == "guest")
    assert guest["hashing_algorithm"] == "rabbit_password_hashing_sha256" and "password" not in guest
    raw["users"].append({**guest, "name": "imported"})  # same hash: its password is "guest"
    raw["permissions"].append({"user": "imported", "vhost": "/", "configure": ".*", "write": ".*",
                               "read": ".*"})  # without one it may not open "/" (as on RabbitMQ)
    path.write_text(json.dumps(raw))
    with EmbeddedBroker() as b:
        subprocess.run(["rabbitmqadmin", "-H", "127.0.0.1", "-P", str(b.http_port), "import", str(path)],
                       check=True, capture_output=True, timeout=20)
        assert _ours(_defs(b.http_url), "/") == exported
        params = pika.URLParameters(f"amqp://imported:guest@127.0.0.1:{b.amqp_port}/%2F")
        pika.BlockingConnection(params).close()
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(f"amqp://imported:wrong@127.0.0.1:{b.amqp_port}/%2F"))


@pytest.mark.rabbitmq
def test_definitions_round_trip_between_rabbitmq_and_ferrymq(rabbit: RabbitNode) -> None:
    """Topology both ways, and users: RabbitMQ's hash logs in on FerryMQ, FerryMQ's on RabbitMQ."""
    _topology(rabbit.management_url, "from-rabbit")
    requests.put(f"{rabbit.management_url}/api/users/rabbit-user", auth=AUTH, timeout=10,
                 json={"password": "r-secret", "tags": ""}).raise_for_status()
    requests.put(f"{rabbit.management_url}/api/permissions/%2F/rabbit-user", auth=AUTH, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    from_rabbit = _defs(rabbit.management_url)
    with EmbeddedBroker() as fm:
        _post(fm.http_url, from_rabbit)
        assert _ours(_defs(fm.http_url), "from-rabbit") == _ours(from_rabbit, "from-rabbit")
        login = f"amqp://rabbit-user:r-secret@127.0.0.1:{fm.amqp_port}/%2F"
        pika.BlockingConnection(pika.URLParameters(login)).close()
        _ferry_topology(fm, "from-ferry")
        users = fm.running.broker.users  # type: ignore[union-attr]
        fm.call(users.__setitem__, "ferry-user", "f-secret")
        fm.call(fm.running.broker.set_permission, "/", "ferry-user",  # type: ignore[union-attr]
                {"configure": ".*", "write": ".*", "read": ".*"})
        from_ferry = _defs(fm.http_url)
    _post(rabbit.management_url, from_ferry)
    assert _ours(_defs(rabbit.management_url), "from-ferry") == _ours(from_ferry, "from-ferry")
    rabbit_port = int(rabbit.amqp_url.rsplit(":", 1)[1].split("/")[0])
    login = f"amqp://ferry-user:f-secret@127.0.0.1:{rabbit_port}/%2F"
    pika.BlockingConnection(pika.URLParameters(login)).close()  # the exported permissions came along


Fields = Callable[[str], dict[str, Any]]


def _rabbit_fields(rabbit: RabbitNode) -> Fields:
    """RabbitMQ's queue JSON shows a new policy once its stats catch up (a few seconds): poll."""
    def fields(queue: str) -> dict[str, Any]:
        deadline = time.monotonic() + 15
        while True:
            q = requests.get(f"{rabbit.management_url}/api/queues/%2F/{queue}", auth=AUTH, timeout=10).json()
            if q.get("policy") is not None or time.monotonic() > deadline:
                return {k: q.get(k) for k in ("policy", "effective_policy_definition")}
            time.sleep(0.25)
    return fields


def _ferry_fields(fm: EmbeddedBroker) -> Fields:
    def fields(queue: str) -> dict[str, Any]:
        q = requests.get(f"{fm.http_url}/api/queues/%2F/{queue}", auth=AUTH, timeout=10).json()
        return {k: q.get(k) for k in ("policy", "effective_policy_definition")}
    return fields


def _behaviour(amqp_url: str, http: str, queue: str, fields: Fields) -> tuple[Any, ...]:
    """Publish 5, apply max-length 2 + DLX by policy, read what the queue and the DLX queue hold;
    then publish one more with the policy's message-ttl and see it expire."""
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.exchange_declare(f"{queue}-dlx", "fanout")
    ch.queue_declare(f"{queue}-dead")
    ch.queue_bind(f"{queue}-dead", f"{queue}-dlx")
    ch.queue_declare(queue)
    for i in range(5):
        ch.basic_publish("", queue, str(i).encode())
    ch.queue_declare(f"{queue}-rp", arguments={"x-overflow": "reject-publish"})
    for i in range(5):
        ch.basic_publish("", f"{queue}-rp", str(i).encode())
    r = requests.put(f"{http}/api/policies/%2F/{queue}-p", auth=AUTH, timeout=10, json={
        "pattern": f"^{queue}(-rp)?$", "apply-to": "queues", "definition": {
            "max-length": 2, "dead-letter-exchange": f"{queue}-dlx", "overflow": "reject-publish"}})
    assert r.status_code == 201
    deadline = time.monotonic() + 5
    while ch.queue_declare(queue, passive=True).method.message_count > 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    kept = ch.queue_declare(queue, passive=True).method.message_count
    dead = ch.queue_declare(f"{queue}-dead", passive=True).method.message_count
    head = ch.basic_get(queue, auto_ack=True)[2]
    kept_rp = ch.queue_declare(f"{queue}-rp", passive=True).method.message_count
    shown = fields(queue)
    requests.delete(f"{http}/api/policies/%2F/{queue}-p", auth=AUTH, timeout=10)
    time.sleep(0.2)
    for i in range(4):
        ch.basic_publish("", queue, str(i).encode())
    time.sleep(0.2)
    after = ch.queue_declare(queue, passive=True).method.message_count
    conn.close()
    return kept, head, dead, after, kept_rp, shown


@pytest.mark.rabbitmq
def test_policy_applied_live_behaves_as_on_rabbitmq(rabbit: RabbitNode) -> None:
    """A drop-head queue over the new limit drops its excess to the DLX at once (even though the
    policy also sets reject-publish); one declared reject-publish keeps it; clearing restores."""
    with EmbeddedBroker() as fm:
        ours = _behaviour(fm.amqp_url, fm.http_url, "diff-q", _ferry_fields(fm))
    theirs = _behaviour(rabbit.amqp_url, rabbit.management_url, "diff-q", _rabbit_fields(rabbit))
    shown = {"policy": "diff-q-p", "effective_policy_definition": {
        "max-length": 2, "dead-letter-exchange": "diff-q-dlx", "overflow": "reject-publish"}}
    assert ours == theirs == (2, b"3", 3, 5, 5, shown)


@pytest.mark.parametrize("body", [
    [1, 2], {"queues": "x"}, {"queues": [{"name": "q", "arguments": "x"}]},
    {"exchanges": [{"name": "e", "type": "nope"}]},
    {"policies": [{"name": "p", "pattern": "^", "definition": {}}]},
])
def test_malformed_definitions_are_a_400_never_a_500(body: Any) -> None:
    with EmbeddedBroker() as fm:
        r = requests.post(f"{fm.http_url}/api/definitions", data=json.dumps(body), auth=AUTH, timeout=10)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "bad_request"


def test_per_vhost_export_drops_vhost_fields_and_imports_into_the_named_vhost() -> None:
    with EmbeddedBroker() as fm:
        _ferry_topology(fm, "one")
        exported = requests.get(f"{fm.http_url}/api/definitions/one", auth=AUTH, timeout=10).json()
        assert exported["queues"] == [{"name": "d-q", "durable": True, "auto_delete": False,
                                       "arguments": {"x-max-length": 5}}]
        fm.call(lambda: fm.running.broker.add_vhost("two"))  # type: ignore[union-attr]
        r = requests.post(f"{fm.http_url}/api/definitions/two", data=json.dumps(exported), auth=AUTH,
                          timeout=10)
        assert r.status_code == 204
        again = requests.get(f"{fm.http_url}/api/definitions/two", auth=AUTH, timeout=10).json()
        assert {k: v for k, v in again.items() if k != "policies"} == {
            k: v for k, v in exported.items() if k != "policies"}
        assert [p["vhost"] for p in again["policies"]] == ["two"]
