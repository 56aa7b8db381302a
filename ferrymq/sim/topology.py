"""Durable topology and faulty logs for the simulated node: what survives a power cut.

Stand-in: ``SimTopology`` replaces the SQLite ``Metadata`` (ferrymq/storage/metadata.py). Its rows are
durable as soon as they change, as SQLite with synchronous=FULL makes them before a declare-ok, so
the stand-in keeps exactly the property recovery relies on, without a database file per seed. Each
durable queue gets a ``QueueLog`` over a ``FaultyLog`` (both real) in its own directory; the
FaultyLog objects outlive node incarnations, a ``QueueLog`` does not (recovery builds a new one).

Stream partitions are ``FaultyStreamLog`` (ferrymq.storage.faulty): the same power-loss model as
queue logs, over the one log engine, kept by ``SimTopicStore``, the core TopicRegistry's store.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ferrymq.core.policy import make_policy
from ferrymq.protocols.amqp.properties import encode_properties, intern_properties
from ferrymq.sim.commit import SimCommit
from ferrymq.storage.faulty import FaultyLog, FaultyStreamLog
from ferrymq.storage.queue_log import QueueLog

QUEUE_SEGMENT_BYTES = 64 * 1024  # small, so segments roll and reclaim within a short run


class SimTopology:
    """The TopologyStore (ferrymq.core.store) of the simulated node."""

    def __init__(self, root: Path, commit: SimCommit, segment_bytes: int = QUEUE_SEGMENT_BYTES,
                 log_factory: Any = FaultyLog) -> None:
        self.root = root
        self.commit = commit
        self.segment_bytes = segment_bytes
        self.log_factory = log_factory
        self.exchanges: dict[tuple[str, str], tuple[str, bool, bool, dict[str, Any]]] = {}
        self.queues: dict[tuple[str, str], tuple[bool, dict[str, Any]]] = {}
        self.bindings: dict[tuple[str, str, str, bool, str], dict[str, Any]] = {}
        self.logs: dict[tuple[str, str], FaultyLog] = {}
        self.policies: dict[tuple[str, str], dict[str, Any]] = {}
        self.vhosts: dict[str, bool] = {}  # name -> deleted (a tombstone)
        self.users: dict[str, tuple[str, str, bool]] = {}  # name -> (hash, algorithm, deleted)
        self.permissions: dict[tuple[str, str], dict[str, str] | None] = {}  # None: cleared
        self.access: dict[tuple[str, str], Any] = {}  # (kind, key) -> tags / topic permission
        self.stores: dict[tuple[str, str], QueueLog] = {}
        self._next_dir = 0

    def new_incarnation(self, commit: SimCommit) -> None:
        """After a restart: the rows and files stay, the in-memory queue logs go."""
        self.commit = commit
        self.stores = {}

    def crash(self, rng: random.Random) -> list[str]:
        """Power loss for every queue log; returns a line per log that lost or tore something."""
        out = []
        for (_vhost, name), flog in sorted(self.logs.items()):
            report = flog.crash(rng)
            dmg = flog.damages[-1]
            if dmg.dropped_bytes or dmg.kept_unsynced_bytes:
                out.append(f"{name}: dropped {dmg.dropped_bytes} B, torn {dmg.kept_unsynced_bytes} B, "
                           f"flip {dmg.flipped_at is not None}, truncated {report.bytes_truncated} B")
        return out

    # --- TopologyStore -----------------------------------------------------------------------------

    def exchange_declared(self, vhost: str, name: str, type_: str, auto_delete: bool, internal: bool,
                          arguments: dict[str, Any]) -> None:
        self.exchanges[(vhost, name)] = (type_, auto_delete, internal, dict(arguments))

    def exchange_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        if (vhost, name) in self.exchanges:
            self.exchanges[(vhost, name)] = (*self.exchanges[(vhost, name)][:3], dict(arguments))

    def exchange_deleted(self, vhost: str, name: str) -> None:
        self.exchanges.pop((vhost, name), None)
        for key in [k for k in self.bindings if k[0] == vhost and (k[1] == name or (k[3] and k[2] == name))]:
            del self.bindings[key]

    def queue_declared(self, vhost: str, name: str, auto_delete: bool, arguments: dict[str, Any]) -> QueueLog:
        key = (vhost, name)
        store = self.stores.get(key)
        if store is not None:
            return store
        self.queues[key] = (auto_delete, dict(arguments))
        flog = self.logs.get(key)
        if flog is None:
            self._next_dir += 1
            flog = self.logs[key] = self.log_factory(self.root / f"q{self._next_dir}", self.segment_bytes)
        store = self.stores[key] = QueueLog(flog, encode_properties, intern_properties, self.commit)
        return store

    def queue_arguments_changed(self, vhost: str, name: str, arguments: dict[str, Any]) -> None:
        if (vhost, name) in self.queues:
            self.queues[(vhost, name)] = (self.queues[(vhost, name)][0], dict(arguments))

    def queue_deleted(self, vhost: str, name: str) -> None:
        self.queues.pop((vhost, name), None)
        for key in [k for k in self.bindings if k[0] == vhost and not k[3] and k[2] == name]:
            del self.bindings[key]
        store = self.stores.pop((vhost, name), None)
        if store is not None:
            store.drop()
        self.logs.pop((vhost, name), None)

    def binding_added(self, vhost: str, source: str, destination: str, to_exchange: bool,
                      routing_key: str, arguments: dict[str, Any]) -> None:
        self.bindings[(vhost, source, destination, to_exchange, routing_key)] = dict(arguments)

    def binding_removed(self, vhost: str, source: str, destination: str, to_exchange: bool,
                        routing_key: str, arguments: dict[str, Any]) -> None:
        self.bindings.pop((vhost, source, destination, to_exchange, routing_key), None)

    def policy_set(self, vhost: str, name: str, policy: dict[str, Any]) -> None:
        self.policies[(vhost, name)] = dict(policy)

    def policy_cleared(self, vhost: str, name: str) -> None:
        self.policies.pop((vhost, name), None)

    def vhost_added(self, name: str) -> None:
        self.vhosts[name] = False

    def vhost_deleted(self, name: str) -> None:
        self.vhosts[name] = True
        for key in [k for k in self.permissions if k[0] == name]:
            del self.permissions[key]
        for key in [k for k in self.policies if k[0] == name]:
            del self.policies[key]

    def user_set(self, name: str, password_hash: str, algorithm: str) -> None:
        self.users[name] = (password_hash, algorithm, False)

    def user_deleted(self, name: str) -> None:
        self.users[name] = ("", "", True)
        for key in [k for k in self.permissions if k[1] == name]:
            del self.permissions[key]

    def permission_set(self, vhost: str, user: str, permission: dict[str, str]) -> None:
        self.permissions[(vhost, user)] = dict(permission)

    def permission_cleared(self, vhost: str, user: str) -> None:
        self.permissions[(vhost, user)] = None

    def access_set(self, kind: str, key: str, value: Any) -> None:
        self.access[(kind, key)] = value

    def delayed_store(self, vhost: str) -> None:
        return None  # the simulation declares no x-delayed-message exchange

    # --- recovery (the sim's thin copy of Durability.recover) --------------------------------------

    def recover(self, broker: Any) -> int:
        """Declare the stored topology again; each durable queue rebuilds itself from its log.
        Returns the number of messages recovered."""
        broker.restore_access(list(self.vhosts.items()),
                              [(n, h, a, d) for n, (h, a, d) in self.users.items()],
                              [(v, u, p) for (v, u), p in self.permissions.items()],
                              [(k, key, v) for (k, key), v in self.access.items()])
        for (vhost, name), body in sorted(self.policies.items()):
            broker.add_vhost(vhost).set_policy(make_policy(vhost, name, body))
        for (vhost, name), (type_, auto_delete, internal, args) in sorted(self.exchanges.items()):
            broker.add_vhost(vhost).declare_exchange(name, type_, durable=True, auto_delete=auto_delete,
                                                     internal=internal, arguments=args)
        recovered = 0
        for (vhost, name), (auto_delete, args) in sorted(self.queues.items()):
            q = broker.add_vhost(vhost).declare_queue(name, connection=None, durable=True,
                                                      auto_delete=auto_delete, arguments=args)
            recovered += q.message_count
        for (vhost, source, dest, to_exchange, key), args in sorted(self.bindings.items()):
            broker.add_vhost(vhost).bind(dest, source, key, args, to_exchange=to_exchange, connection=None)
        return recovered


class SimTopicStore:
    """The TopicStore (ferrymq.core.topics) of the simulated node. Topic rows are durable as soon as
    they change, as StreamStore's fsynced ``topic.json`` is before a CreateTopics answer; each
    partition is a ``FaultyStreamLog`` that outlives node incarnations (a new TopicRegistry reopens
    it after recovery)."""

    def __init__(self, root: Path, stream_factory: type[FaultyStreamLog] = FaultyStreamLog) -> None:
        self.root = root
        self.stream_factory = stream_factory
        self.rows: dict[str, dict[str, Any]] = {}
        self.logs: dict[tuple[str, int], FaultyStreamLog] = {}

    def load(self) -> list[dict[str, Any]]:
        return [dict(self.rows[name]) for name in sorted(self.rows)]

    def save(self, name: str, partitions: int, configs: dict[str, str], internal: bool = False) -> None:
        self.rows[name] = {"name": name, "partitions": partitions, "configs": dict(configs),
                           "internal": internal}

    def open_partition(self, name: str, partition: int, segment_bytes: int,
                       segment_ms: int = -1) -> FaultyStreamLog:
        lg = self.logs.get((name, partition))
        if lg is None:
            lg = self.logs[(name, partition)] = self.stream_factory(
                self.root / name / str(partition), segment_bytes=segment_bytes, segment_ms=segment_ms)
        return lg

    def delete(self, name: str) -> None:
        self.rows.pop(name, None)
        for key in [k for k in self.logs if k[0] == name]:
            self.logs.pop(key).delete()

    def crash(self, rng: random.Random) -> list[str]:
        """Power loss for every partition; a line per partition that lost or tore something."""
        return [line for (name, p), lg in sorted(self.logs.items())
                for line in stream_crash(f"{name}-{p}", lg, rng)]

    def close(self) -> None:
        for lg in self.logs.values():
            lg.log.close()


def stream_crash(name: str, lg: FaultyStreamLog, rng: random.Random) -> list[str]:
    lg.crash(rng)
    damage = lg.damages[-1]
    dropped, torn = damage.dropped_bytes, damage.kept_unsynced_bytes
    return [f"{name}: dropped {dropped} B, torn {torn} B"] if dropped or torn else []
