"""Debian's rabbitmqadmin (RabbitMQ 3.10's management CLI) against FerryMQ's management API."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from ferrymq import EmbeddedBroker

BINARY = shutil.which("rabbitmqadmin")
pytestmark = pytest.mark.skipif(BINARY is None, reason="rabbitmqadmin not installed")


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def admin(broker: EmbeddedBroker, *args: str) -> str:
    assert BINARY is not None
    cmd = [BINARY, "-H", "127.0.0.1", "-P", str(broker.http_port), "-u", "guest", "-p", "guest", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def listed(broker: EmbeddedBroker, *args: str) -> list[dict[str, object]]:
    return json.loads(admin(broker, "-f", "raw_json", *args))  # type: ignore[no-any-return]


def test_declare_publish_get_purge_delete_round_trip(broker: EmbeddedBroker) -> None:
    admin(broker, "declare", "queue", "name=adm-q", "durable=true")
    admin(broker, "declare", "exchange", "name=adm-x", "type=topic")
    admin(broker, "declare", "binding", "source=adm-x", "destination=adm-q", "routing_key=a.*")
    assert "Message published" in admin(broker, "publish", "exchange=adm-x", "routing_key=a.b",
                                        "payload=hello admin")
    admin(broker, "publish", "exchange=amq.default", "routing_key=adm-q", "payload=second")
    queues = {q["name"]: q for q in listed(broker, "list", "queues", "name", "messages", "durable")}
    assert queues["adm-q"]["messages"] == 2 and queues["adm-q"]["durable"] is True
    got = listed(broker, "get", "queue=adm-q", "count=2", "ackmode=ack_requeue_true")
    assert [m["payload"] for m in got] == ["hello admin", "second"]
    assert "adm-x" in {x["name"] for x in listed(broker, "list", "exchanges")}
    bindings = listed(broker, "list", "bindings")
    assert {"source": "adm-x", "destination": "adm-q", "routing_key": "a.*"}.items() <= next(
        b for b in bindings if b["source"] == "adm-x").items()
    assert "purged" in admin(broker, "purge", "queue", "name=adm-q")
    assert listed(broker, "list", "queues", "name", "messages")[0]["messages"] == 0
    assert "deleted" in admin(broker, "delete", "queue", "name=adm-q")
    assert "adm-q" not in {q["name"] for q in listed(broker, "list", "queues")}


def test_show_overview_and_table_output(broker: EmbeddedBroker) -> None:
    out = admin(broker, "show", "overview")
    assert "3.10" in out and "ferrymq" in out.lower()
    admin(broker, "declare", "queue", "name=adm-table")
    assert "adm-table" in admin(broker, "list", "queues")
    admin(broker, "delete", "queue", "name=adm-table")
