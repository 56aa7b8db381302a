"""Durable topology in SQLite: vhosts, exchanges, queues and bindings (the TopologyStore).

Why SQLite: topology changes are rare, small and must be atomic; the standard library's SQLite gives
transactions and crash safety (WAL, synchronous=FULL: a declare-ok is sent after its commit reached
disk) without a format of our own. Messages never go here: they live in the queue logs.

Each durable queue has a row id; its log lives in ``queues/<id>``. A queue deleted and declared again
gets a new id, so a stale directory can never be mistaken for the new queue's. The queue's Log creates
``queues/<id>`` and syncs ``queues/`` in its first fsync, before any message in it is confirmed. On
open, directories without a row (a crash between the row's delete and the directory's removal) are
removed and reported.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.core.store import QueueStore
from ferrymq.storage.commit import make_durable_directory

EncodeTable = Callable[[dict[str, Any]], bytes]
DecodeTable = Callable[[bytes], dict[str, Any]]
OpenQueue = Callable[[Path, dict[str, Any]], QueueStore]  # (directory, the queue's arguments)

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS exchanges (
    vhost TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, auto_delete INTEGER NOT NULL,
    internal INTEGER NOT NULL, arguments BLOB NOT NULL, PRIMARY KEY (vhost, name));
CREATE TABLE IF NOT EXISTS queues (
    id INTEGER PRIMARY KEY AUTOINCREMENT, vhost TEXT NOT NULL, name TEXT NOT NULL,
    auto_delete INTEGER NOT NULL, arguments BLOB NOT NULL, UNIQUE (vhost, name));
CREATE TABLE IF NOT EXISTS bindings (
    vhost TEXT NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL, to_exchange INTEGER NOT NULL,
    routing_key TEXT NOT NULL, arguments BLOB NOT NULL,
    PRIMARY KEY (vhost, source, destination, to_exchange, routing_key, arguments));
CREATE TABLE IF NOT EXISTS policies (
    vhost TEXT NOT NULL, name TEXT NOT NULL, policy TEXT NOT NULL, PRIMARY KEY (vhost, name));
CREATE TABLE IF NOT EXISTS vhosts (name TEXT PRIMARY KEY, deleted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, password_hash TEXT NOT NULL, algorithm TEXT NOT NULL, deleted INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS permissions (
    vhost TEXT NOT NULL, user TEXT NOT NULL, permission TEXT, PRIMARY KEY (vhost, user));
CREATE TABLE IF NOT EXISTS limits (
    scope TEXT NOT NULL, name TEXT NOT NULL, limits TEXT NOT NULL, PRIMARY KEY (scope, name));
CREATE TABLE IF NOT EXISTS access (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT,
    PRIMARY KEY (kind, key));
"""


@dataclass(slots=True)
class Topology:
    """What was stored, in the order it must be declared again."""

    exchanges: list[tuple[str, str, str, bool, bool, dict[str, Any]]] = field(default_factory=list)
    queues: list[tuple[str, str, bool, dict[str, Any]]] = field(default_factory=list)
    bindings: list[tuple[str, str, str, bool, str, dict[str, Any]]] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    policies: list[dict[str, Any]] = field(default_factory=list)  # RabbitMQ's policy JSON objects
    # Broker.restore_access's rows: deletions are tombstones (deleted, or a None permission)
    vhosts: list[tuple[str, bool]] = field(default_factory=list)
    users: list[tuple[str, str, str, bool]] = field(default_factory=list)
    permissions: list[tuple[str, str, dict[str, str] | None]] = field(default_factory=list)
    access: list[tuple[str, str, Any]] = field(default_factory=list)  # tags, topic permissions


class Metadata:
    """The TopologyStore (ferrymq.core.store) over one SQLite file in the data directory."""

    def __init__(self, directory: str | Path, open_queue: OpenQueue, encode_table: EncodeTable,
                 decode_table: DecodeTable) -> None:
        self.directory = Path(directory)
        self.queue_root = self.directory / "queues"
        make_durable_directory(self.queue_root)  # each queue's Log syncs queues/ for its own dir
        self._open_queue = open_queue
        self._encode = encode_table
        self._decode = decode_table
        self._db = sqlite3.connect(self.directory / "metadata.sqlite3", isolation_level=None,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        self._stores: dict[tuple[str, str], tuple[int, QueueStore]] = {}
        self._delayed: dict[str, QueueStore] = {}

    def _write(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Cursor:
        with self._db:  # one transaction per change: committed (and synced) before the reply
            return self._db.execute(sql, params)

    # --- TopologyStore ---------------------------------------------------------------------------

    def exchange_declared(self, vhost: str, name: str, type_: str, auto_delete: bool, internal: bool,
                          arguments: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO exchanges VALUES (?, ?, ?, ?, ?, ?)",
                    (vhost, name, type_, auto_delete, internal, self._encode(arguments)))

    def exchange_deleted(self, vhost: str, name: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM exchanges WHERE vhost = ? AND name = ?", (vhost, name))
            self._db.execute("DELETE FROM bindings WHERE vhost = ? AND (source = ? OR "
                             "(to_exchange = 1 AND destination = ?))", (vhost, name, name))

    def exchange_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        self._write("UPDATE exchanges SET arguments = ? WHERE vhost = ? AND name = ?",
                    (self._encode(arguments), vhost, name))

    def queue_declared(self, vhost: str, name: str, auto_delete: bool,
                       arguments: dict[str, Any]) -> QueueStore:
        known = self._stores.get((vhost, name))
        if known is not None:
            return known[1]
        self._write("INSERT OR IGNORE INTO queues (vhost, name, auto_delete, arguments) "
                    "VALUES (?, ?, ?, ?)", (vhost, name, auto_delete, self._encode(arguments)))
        (qid,) = self._db.execute("SELECT id FROM queues WHERE vhost = ? AND name = ?",
                                  (vhost, name)).fetchone()
        store = self._open_queue(self.queue_root / str(qid), arguments)
        self._stores[(vhost, name)] = (qid, store)
        return store

    def queue_deleted(self, vhost: str, name: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM queues WHERE vhost = ? AND name = ?", (vhost, name))
            self._db.execute("DELETE FROM bindings WHERE vhost = ? AND to_exchange = 0 AND "
                             "destination = ?", (vhost, name))
        known = self._stores.pop((vhost, name), None)
        if known is not None:
            known[1].drop()
            shutil.rmtree(self.queue_root / str(known[0]), ignore_errors=True)

    def queue_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        self._write("UPDATE queues SET arguments = ? WHERE vhost = ? AND name = ?",
                    (self._encode(arguments), vhost, name))

    def binding_added(self, vhost: str, source: str, destination: str, to_exchange: bool,
                      routing_key: str, arguments: dict[str, Any]) -> None:
        self._write("INSERT OR IGNORE INTO bindings VALUES (?, ?, ?, ?, ?, ?)",
                    (vhost, source, destination, to_exchange, routing_key, self._encode(arguments)))

    def binding_removed(self, vhost: str, source: str, destination: str, to_exchange: bool,
                        routing_key: str, arguments: dict[str, Any]) -> None:
        self._write("DELETE FROM bindings WHERE vhost = ? AND source = ? AND destination = ? AND "
                    "to_exchange = ? AND routing_key = ? AND arguments = ?",
                    (vhost, source, destination, to_exchange, routing_key, self._encode(arguments)))

    def policy_set(self, vhost: str, name: str, policy: dict[str, Any]) -> None:
        self._write("INSERT OR REPLACE INTO policies VALUES (?, ?, ?)", (vhost, name, json.dumps(policy)))

    def policy_cleared(self, vhost: str, name: str) -> None:
        self._write("DELETE FROM policies WHERE vhost = ? AND name = ?", (vhost, name))

    def vhost_added(self, name: str) -> None:
        self._write("INSERT OR REPLACE INTO vhosts VALUES (?, 0)", (name,))

    def vhost_deleted(self, name: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO vhosts VALUES (?, 1)", (name,))
            self._db.execute("DELETE FROM permissions WHERE vhost = ?", (name,))
            self._db.execute("DELETE FROM policies WHERE vhost = ?", (name,))
            self._db.execute("DELETE FROM limits WHERE scope = 'vhost' AND name = ?", (name,))

    def user_set(self, name: str, password_hash: str, algorithm: str) -> None:
        self._write("INSERT OR REPLACE INTO users VALUES (?, ?, ?, 0)", (name, password_hash, algorithm))

    def user_deleted(self, name: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO users VALUES (?, '', '', 1)", (name,))
            self._db.execute("DELETE FROM permissions WHERE user = ?", (name,))
            self._db.execute("DELETE FROM limits WHERE scope = 'user' AND name = ?", (name,))

    def permission_set(self, vhost: str, user: str, permission: dict[str, str]) -> None:
        self._write("INSERT OR REPLACE INTO permissions VALUES (?, ?, ?)",
                    (vhost, user, json.dumps(permission)))

    def permission_cleared(self, vhost: str, user: str) -> None:
        self._write("INSERT OR REPLACE INTO permissions VALUES (?, ?, NULL)", (vhost, user))

    def limits_set(self, scope: str, name: str, values: dict[str, int]) -> None:
        """A vhost's or user's limits (ferrymq.core.vhost_limits); none left deletes the row."""
        if values:
            self._write("INSERT OR REPLACE INTO limits VALUES (?, ?, ?)", (scope, name, json.dumps(values)))
        else:
            self._write("DELETE FROM limits WHERE scope = ? AND name = ?", (scope, name))

    def load_limits(self) -> list[tuple[str, str, dict[str, int]]]:
        rows = self._db.execute("SELECT * FROM limits ORDER BY rowid")
        return [(scope, name, json.loads(values)) for scope, name, values in rows]
    def access_set(self, kind: str, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO access VALUES (?, ?, ?)",
                    (kind, key, None if value is None else json.dumps(value)))

    def delayed_store(self, vhost: str) -> QueueStore:
        store = self._delayed.get(vhost)
        if store is None:
            path = self.directory / "delayed" / vhost.encode().hex()
            store = self._delayed[vhost] = self._open_queue(path, {})
        return store

    # --- recovery --------------------------------------------------------------------------------

    def load(self) -> Topology:
        """Everything stored, and the removal of queue directories that no row owns."""
        db, top = self._db, Topology()
        for v, n, t, ad, i, a in db.execute("SELECT * FROM exchanges ORDER BY vhost, name"):
            top.exchanges.append((v, n, t, bool(ad), bool(i), self._decode(a)))
        ids: set[str] = set()
        for qid, v, n, ad, a in db.execute("SELECT * FROM queues ORDER BY id"):
            ids.add(str(qid))
            top.queues.append((v, n, bool(ad), self._decode(a)))
        top.policies = [json.loads(p) for (p,) in db.execute("SELECT policy FROM policies ORDER BY rowid")]
        top.vhosts = [(n, bool(d)) for n, d in db.execute("SELECT * FROM vhosts ORDER BY rowid")]
        top.users = [(n, h, a, bool(d)) for n, h, a, d in db.execute("SELECT * FROM users ORDER BY rowid")]
        top.permissions = [(v, u, None if p is None else json.loads(p))
                           for v, u, p in db.execute("SELECT * FROM permissions ORDER BY rowid")]
        top.access = [(k, key, None if v is None else json.loads(v))
                      for k, key, v in db.execute("SELECT * FROM access ORDER BY rowid")]
        for v, s, d, te, rk, a in db.execute("SELECT * FROM bindings ORDER BY rowid"):
            top.bindings.append((v, s, d, bool(te), rk, self._decode(a)))
        for path in sorted(self.queue_root.iterdir()):
            if path.name not in ids:
                shutil.rmtree(path, ignore_errors=True)
                top.orphans_removed.append(path.name)
        return top

    def queue_stores(self) -> list[QueueStore]:
        return [store for _, store in self._stores.values()] + list(self._delayed.values())

    def close(self) -> None:
        self._db.close()
