"""The audit log: each admin action over the HTTP API (the ``ferrymq`` CLI and definition imports
included) is one JSON line in <data_dir>/audit.log with who, what, when, from where and the result;
reads are not recorded. The limits CLI commands (rabbitmqctl's names) go through it."""

from __future__ import annotations

import json
from pathlib import Path

import requests
from typer.testing import CliRunner

from ferrymq.cli import app
from tests.support.fixtures import kept_data_dir_broker

AUTH = ("guest", "guest")


data_dir, broker = kept_data_dir_broker("audit")


def _entries(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "audit.log").read_text().splitlines()]


def test_a_management_action_is_recorded_with_user_peer_time_and_result(broker, data_dir: Path) -> None:
    session = requests.Session()
    r = session.put(f"{broker.http_url}/api/vhosts/audited", auth=AUTH, timeout=5)
    assert r.status_code == 201
    local = r.raw._connection.sock.getsockname() if r.raw._connection else None
    session.get(f"{broker.http_url}/api/vhosts", auth=AUTH, timeout=5)  # a read: not an admin action
    refused = requests.delete(f"{broker.http_url}/api/vhosts/audited", auth=("guest", "wrong"), timeout=5)
    assert refused.status_code == 401
    entries = [e for e in _entries(data_dir) if e["path"] == "/api/vhosts/audited"]
    done, denied = entries[-2], entries[-1]
    assert (done["user"], done["authenticated"], done["method"], done["status"], done["result"]) == (
        "guest", True, "PUT", 201, "ok")
    assert done["object"] == {"vhost": "audited"}
    assert done["peer"].startswith("127.0.0.1:") and done["time"].endswith("+00:00")
    if local is not None:
        assert done["peer"] == f"{local[0]}:{local[1]}"
    assert (denied["user"], denied["authenticated"], denied["method"], denied["status"],
            denied["result"]) == ("guest", False, "DELETE", 401, "refused")
    assert not any(e["method"] == "GET" for e in _entries(data_dir))


def test_cli_limit_commands_and_a_definitions_import_are_audited(broker, data_dir: Path) -> None:
    runner = CliRunner()
    url = ["--url", broker.http_url]
    done = runner.invoke(app, ["set-vhost-limits", '{"max-connections": 5, "max-queues": 7}', *url])
    assert done.exit_code == 0, done.output
    rows = requests.get(f"{broker.http_url}/api/vhost-limits/%2F", auth=AUTH, timeout=5).json()
    assert rows == [{"vhost": "/", "value": {"max-connections": 5, "max-queues": 7}}]
    assert runner.invoke(app, ["clear-vhost-limits", *url]).exit_code == 0
    assert requests.get(f"{broker.http_url}/api/vhost-limits/%2F", auth=AUTH, timeout=5).json() == []
    mark = runner.invoke(app, ["set-vm-memory-high-watermark", "absolute", "64GiB", *url])
    assert mark.exit_code == 0, mark.output
    node = requests.get(f"{broker.http_url}/api/nodes", auth=AUTH, timeout=5).json()[0]
    assert node["mem_limit"] == 64 * 1024**3
    assert runner.invoke(app, ["set-vm-memory-high-watermark", "lots", *url]).exit_code == 2
    imported = requests.post(f"{broker.http_url}/api/definitions", auth=AUTH, timeout=5,
                             json={"vhosts": [{"name": "from-defs"}]})
    assert imported.status_code in (200, 201, 204)
    entries = _entries(data_dir)
    cli = [e for e in entries if e["agent"] == "ferrymq-cli"]
    assert [(e["method"], e["path"]) for e in cli] == [
        ("PUT", "/api/vhost-limits/%2F/max-connections"), ("PUT", "/api/vhost-limits/%2F/max-queues"),
        ("DELETE", "/api/vhost-limits/%2F/max-connections"), ("DELETE", "/api/vhost-limits/%2F/max-queues"),
        ("PUT", "/api/ferrymq/vm-memory-high-watermark")]
    assert any(e["path"] == "/api/definitions" and e["method"] == "POST" and e["result"] == "ok"
               for e in entries)
