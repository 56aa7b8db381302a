"""Vhosts, users and permissions made over the management API or a definitions import survive a
restart on the same data directory (the SQLite topology store), as they do on RabbitMQ."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pika
import pytest
import requests

from ferrymq import EmbeddedBroker

GUEST = ("guest", "guest")
PERM = {"configure": "^c", "write": "^w", "read": "^r"}


def _put(b: EmbeddedBroker, path: str, body: dict[str, Any], auth: tuple[str, str] = GUEST) -> None:
    r = requests.put(f"{b.http_url}{path}", json=body, auth=auth, timeout=10)
    assert r.status_code == 201, r.text


def _get(b: EmbeddedBroker, path: str, auth: tuple[str, str] = GUEST) -> requests.Response:
    return requests.get(f"{b.http_url}{path}", auth=auth, timeout=10)


def _amqp_login(b: EmbeddedBroker, user: str, password: str, vhost: str) -> None:
    params = pika.ConnectionParameters("127.0.0.1", b.amqp_port, vhost,
                                       pika.PlainCredentials(user, password), connection_attempts=1)
    pika.BlockingConnection(params).close()


def test_vhost_user_and_permissions_survive_a_restart_and_the_user_logs_in(tmp_path: Path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        _put(b, "/api/vhosts/kept", {})
        _put(b, "/api/users/alice", {"password": "s3cret", "tags": "management"})
        _put(b, "/api/permissions/kept/alice", PERM)
    with sqlite3.connect(tmp_path / "metadata.sqlite3") as db:
        stored = " ".join(str(row) for row in db.execute("SELECT * FROM users"))
    assert "alice" in stored and "s3cret" not in stored  # a salted hash, never the password
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert "kept" in [v["name"] for v in _get(b, "/api/vhosts").json()]
        _amqp_login(b, "alice", "s3cret", "kept")
        assert _get(b, "/api/whoami", ("alice", "s3cret")).json()["name"] == "alice"
        assert _get(b, "/api/whoami", ("alice", "wrong")).status_code == 401
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            _amqp_login(b, "alice", "wrong", "kept")
        assert _get(b, "/api/permissions/kept/alice").json() == {"user": "alice", "vhost": "kept", **PERM}
        assert _get(b, "/api/users/alice").json()["hashing_algorithm"] == "rabbit_password_hashing_sha256"


def test_deleted_users_vhosts_and_permissions_stay_deleted_after_a_restart(tmp_path: Path) -> None:
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        _put(b, "/api/users/bob", {"password": "pw"})
        _put(b, "/api/users/admin", {"password": "pw", "tags": "administrator"})
        _put(b, "/api/vhosts/gone", {})
        _put(b, "/api/permissions/gone/bob", PERM)
        _put(b, "/api/permissions/%2F/admin", PERM)
        auth = ("admin", "pw")
        for path in ("/api/users/bob", "/api/vhosts/gone", "/api/users/guest", "/api/permissions/%2F/admin"):
            assert requests.delete(f"{b.http_url}{path}", auth=auth, timeout=10).status_code == 204
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        auth = ("admin", "pw")
        assert _get(b, "/api/users/bob", auth).status_code == 404
        assert _get(b, "/api/users/guest", auth).status_code == 404  # a configured user, deleted
        assert _get(b, "/api/whoami").status_code == 401
        assert _get(b, "/api/vhosts/gone", auth).status_code == 404
        assert _get(b, "/api/permissions/%2F/admin", auth).status_code == 404
        assert _get(b, "/api/permissions", auth).json() == []
        _put(b, "/api/users/guest", {"password": "again", "tags": "administrator"}, auth)  # made again
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert _get(b, "/api/whoami", ("guest", "again")).status_code == 200


def test_a_definitions_import_of_users_and_vhosts_survives_a_restart(tmp_path: Path) -> None:
    with EmbeddedBroker() as source:  # a hash made by an export, imported elsewhere
        _put(source, "/api/users/hashed", {"password": "h-pw", "tags": "management"})
        exported = next(u for u in _get(source, "/api/definitions").json()["users"] if u["name"] == "hashed")
    defs = {"users": [exported, {"name": "plain", "password": "p-pw", "tags": "management"}],
            "vhosts": [{"name": "imported"}], "permissions": [{"user": "plain", "vhost": "/", **PERM}]}
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        r = requests.post(f"{b.http_url}/api/definitions", json=defs, auth=GUEST, timeout=10)
        assert r.status_code == 204, r.text
    with EmbeddedBroker(data_dir=str(tmp_path)) as b:
        assert "imported" in [v["name"] for v in _get(b, "/api/vhosts").json()]
        assert _get(b, "/api/whoami", ("hashed", "h-pw")).status_code == 200
        assert _get(b, "/api/whoami", ("plain", "p-pw")).status_code == 200
        _amqp_login(b, "plain", "p-pw", "/")
