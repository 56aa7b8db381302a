"""Definitions import into a real broker over HTTP: a file shaped as RabbitMQ 3.10 writes it (taken
from a real node's export) keeps every section FerryMQ supports, limits included, reports exactly
what it drops (200 + "dropped"; 204 when nothing), and what it kept survives a restart; operator
policies over HTTP (validation, the merged effective definition, max-length applied live);
``load_definitions`` at boot (a file, a directory) and a bad file as one line with exit 2;
``ferrymq definitions import`` printing what was dropped."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker
from ferrymq.server.boot_definitions import DefinitionsFileError, read_definitions

AUTH = ("guest", "guest")
ROOT = Path(__file__).resolve().parents[2]
# Trimmed from RabbitMQ 3.10.8's GET /api/definitions (rt-user's password is "rt-secret").
RABBIT = {
    "rabbit_version": "3.10.8", "rabbitmq_version": "3.10.8", "product_name": "RabbitMQ",
    "product_version": "3.10.8",
    "users": [{"name": "rt-user", "password_hash": "q3TXlMfU53whW+VnJ595XzMpXgaBpllyWV3XpRJ9R99uaXgu",
               "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["monitoring", "policymaker"],
               "limits": {"max-connections": 10}}],
    "vhosts": [{"name": "/"}, {"name": "rt-v"}],
    "permissions": [{"user": "rt-user", "vhost": "rt-v", "configure": "^rt-", "write": ".*", "read": "^rt-"}],
    "topic_permissions": [{"user": "rt-user", "vhost": "rt-v", "exchange": "amq.topic", "write": "^a",
                           "read": "^b"}],
    "parameters": [
        {"value": {"pattern": "^rt-", "definition": {"max-length": 2, "expires": 900000}, "priority": 0,
                   "apply-to": "queues"}, "vhost": "rt-v", "component": "operator_policy", "name": "rt-op"},
        {"value": {"max-queues": 100}, "vhost": "rt-v", "component": "vhost-limits", "name": "limits"},
        {"value": {"src-uri": "amqp://"}, "vhost": "rt-v", "component": "shovel", "name": "sh"}],
    "global_parameters": [{"name": "cluster_name", "value": "rt-cluster"}],
    "policies": [{"vhost": "rt-v", "name": "rt-pol", "pattern": "^rt-q$", "apply-to": "queues",
                  "definition": {"max-length": 5, "ha-mode": "all"}, "priority": 3}],
    "queues": [{"name": "rt-q", "vhost": "rt-v", "durable": True, "auto_delete": False,
                "arguments": {"x-queue-type": "quorum", "x-delivery-limit": 3}}],
    "exchanges": [{"name": "rt-topic", "vhost": "rt-v", "type": "topic", "durable": True,
                   "auto_delete": False, "internal": False, "arguments": {}}],
    "bindings": [{"source": "rt-topic", "vhost": "rt-v", "destination": "rt-q", "destination_type": "queue",
                  "routing_key": "a.#", "arguments": {}}],
}
DROPPED = [
    {"section": "parameters", "name": "shovel/sh", "vhost": "rt-v", "reason": "FerryMQ has no shovel plugin"},
]


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _post(base: str, body: Any, path: str = "/api/definitions") -> requests.Response:
    return requests.post(base + path, json=body, auth=AUTH, timeout=10)


def _get(base: str, path: str) -> Any:
    return requests.get(base + path, auth=AUTH, timeout=10).json()


def _kept(defs: dict[str, Any], key: str, vhost: str | None = "rt-v") -> list[Any]:
    return [i for i in defs[key] if vhost is None or i.get("vhost") == vhost]


def test_rabbitmq_export_keeps_what_ferrymq_supports_and_reports_the_rest(broker: EmbeddedBroker) -> None:
    r = _post(broker.http_url, RABBIT)
    assert (r.status_code, r.json()) == (200, {"dropped": DROPPED})
    out = _get(broker.http_url, "/api/definitions")
    user = next(u for u in out["users"] if u["name"] == "rt-user")
    assert user == RABBIT["users"][0]
    assert _kept(out, "topic_permissions") == RABBIT["topic_permissions"]
    assert _kept(out, "permissions") == RABBIT["permissions"]
    assert _kept(out, "parameters") == RABBIT["parameters"][:2]
    assert out["global_parameters"] == RABBIT["global_parameters"]
    for key in ("policies", "queues", "exchanges", "bindings"):
        assert _kept(out, key) == RABBIT[key], key
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", broker.amqp_port, "rt-v", pika.PlainCredentials("rt-user", "rt-secret")))
    conn.close()


def test_an_import_that_drops_nothing_answers_204_as_rabbitmq(broker: EmbeddedBroker) -> None:
    r = _post(broker.http_url, {"vhosts": [{"name": "quiet"}], "queues": [{"name": "q", "vhost": "quiet"}]})
    assert (r.status_code, r.content) == (204, b"")


def test_operator_policy_merges_with_the_policy_and_truncates_at_once(broker: EmbeddedBroker) -> None:
    conn = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    ch = conn.channel()
    ch.queue_declare("op-q", arguments={"x-max-length": 9})
    for i in range(8):
        ch.basic_publish("", "op-q", str(i).encode())
    base = f"{broker.http_url}/api"
    body = {"pattern": "^op-", "apply-to": "queues", "definition": {"max-length": 3, "message-ttl": 5000}}
    requests.put(f"{base}/policies/%2F/op-up", auth=AUTH, timeout=5, json={
        "pattern": "^op-", "definition": {"max-length": 6, "message-ttl": 1000}}).raise_for_status()
    r = requests.put(f"{base}/operator-policies/%2F/op-op", json=body, auth=AUTH, timeout=5)
    assert r.status_code == 201
    assert ch.queue_declare("op-q", passive=True).method.message_count == 3
    assert ch.basic_get("op-q", auto_ack=True)[2] == b"5"  # the head went
    q = _get(broker.http_url, "/api/queues/%2F/op-q")
    assert (q["policy"], q["operator_policy"], q["effective_policy_definition"]) == (
        "op-up", "op-op", {"max-length": 3, "message-ttl": 1000})
    assert _get(broker.http_url, "/api/operator-policies/%2F/op-op")["definition"] == body["definition"]
    assert requests.delete(f"{base}/operator-policies/%2F/op-op", auth=AUTH, timeout=5).status_code == 204
    assert _get(broker.http_url, "/api/queues/%2F/op-q")["operator_policy"] is None
    conn.close()


@pytest.mark.parametrize(("path", "body", "status", "reason"), [
    ("/api/operator-policies/%2F/bad", {"pattern": ".*", "definition": {"dead-letter-exchange": "x"}}, 400,
     'Validation failed\n\n[{<<"dead-letter-exchange">>,<<"x">>}] are not recognised policy settings\n'),
    ("/api/operator-policies/nope/p", {"pattern": ".*", "definition": {"max-length": 1}}, 404, None),
])
def test_operator_policy_refusals_are_rabbitmqs(broker: EmbeddedBroker, path: str, body: Any, status: int,
                                                reason: str | None) -> None:
    r = requests.put(broker.http_url + path, json=body, auth=AUTH, timeout=5)
    assert r.status_code == status
    if reason is not None:
        assert r.json()["reason"] == reason


def test_kept_data_and_operator_policies_survive_a_restart(tmp_path: Path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert _post(b.http_url, RABBIT).status_code == 200
        before = _get(b.http_url, "/api/definitions")
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        after = _get(b.http_url, "/api/definitions")
        q = _get(b.http_url, "/api/queues/rt-v/rt-q")
    del after["users"], before["users"]  # the configured guest's hash is salted afresh at each export
    assert after == before
    assert (q["operator_policy"], q["effective_policy_definition"]["max-length"]) == ("rt-op", 2)


def test_load_definitions_imports_a_file_or_a_directory_before_clients_connect(tmp_path: Path) -> None:
    (tmp_path / "b.json").write_text(json.dumps({"queues": [{"name": "boot-b", "vhost": "/"}]}))
    (tmp_path / "a.json").write_text(json.dumps(RABBIT))
    (tmp_path / "notes.txt").write_text("not definitions")
    for setting, queues in ((tmp_path / "b.json", {"boot-b"}), (tmp_path, {"boot-b", "rt-q"})):
        with EmbeddedBroker(load_definitions=str(setting)) as b:
            names = {q["name"] for q in _get(b.http_url, "/api/queues")}
            assert queues <= names, (setting, names)


@pytest.mark.parametrize(("name", "content", "says"), [
    ("missing.json", None, "does not exist"),
    ("defs.json", "{not json", "is not valid JSON"),
])
def test_an_unreadable_definitions_file_is_named_before_any_store_opens(
        tmp_path: Path, name: str, content: str | None, says: str) -> None:
    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(DefinitionsFileError, match=f"^load_definitions: .*{name}.*{says}"):
        read_definitions(str(tmp_path / name))


def test_serve_with_a_refused_definitions_file_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    (tmp_path / "defs.json").write_text(json.dumps({"exchanges": [{"name": "e", "type": "nope"}]}))
    done = subprocess.run(
        [sys.executable, "-m", "ferrymq.cli", "serve", "--data-dir", str(tmp_path / "d"), "--amqp-port", "0",
         "--kafka-port", "0", "--http-port", "0"],
        env={"FERRYMQ_LOAD_DEFINITIONS": str(tmp_path / "defs.json"), "PATH": "/usr/bin:/bin",
             "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("ferrymq:")]
    prefix = f"ferrymq: load_definitions: {tmp_path / 'defs.json'}: "
    assert len(lines) == 1 and lines[0].startswith(prefix), done.stderr


def test_cli_import_prints_what_the_broker_dropped(broker: EmbeddedBroker, tmp_path: Path) -> None:
    file = tmp_path / "defs.json"
    file.write_text(json.dumps(RABBIT))
    done = subprocess.run([sys.executable, "-m", "ferrymq.cli", "definitions", "import", str(file),
                           "--url", broker.http_url], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"imported definitions from {file}; dropped 1:",
        "  parameters/rt-v/shovel/sh: FerryMQ has no shovel plugin"]
