"""The Kafka APIs other than Produce and Fetch, on kio's entities: versions, metadata, offsets,
the group coordinator's requests, admin, idempotent producer ids and SASL PLAIN.

Each handler reads the decoded request and answers with a plain dict shaped like the newest version;
``entities.encode_response`` fits it to the version the client asked for.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from ferrymq.core.streams import TOPIC_CONFIG_DEFAULTS, topic_name_error
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.entities import decode_request, encode_response, ms
from ferrymq.protocols.kafka.primitives import I32, Reader
from ferrymq.protocols.kafka.records import decode_batches
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.storage.stream_log import StreamLog

if TYPE_CHECKING:
    from ferrymq.server.kafka.server import Handler, KafkaServer

log = logging.getLogger("ferrymq.kafka")

NODE_ID = 0
CLUSTER_ID = "ferrymq-cluster"
EARLIEST, LATEST = -2, -1
RESOURCE_TOPIC, RESOURCE_BROKER = 2, 4
CONFIG_SOURCE_TOPIC, CONFIG_SOURCE_DEFAULT = 1, 5
# the broker-wide name of each topic config's default (Kafka's server.properties names)
BROKER_NAMES = {
    "cleanup.policy": "log.cleanup.policy", "delete.retention.ms": "log.cleaner.delete.retention.ms",
    "max.message.bytes": "message.max.bytes", "message.timestamp.type": "log.message.timestamp.type",
    "retention.bytes": "log.retention.bytes", "retention.ms": "log.retention.ms",
    "segment.bytes": "log.segment.bytes", "segment.ms": "log.roll.ms",
}


def _body(ctx: Any) -> memoryview:
    r: Reader = ctx[1]
    return memoryview(r.buf)[r.pos : r.end]


class KafkaApis:
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.topics = server.topics
        self.coordinator = server.coordinator
        self._producer_ids = itertools.count(time.time_ns() // 1000)  # unique across restarts

    def handlers(self) -> dict[int, Handler]:
        v = versions
        table = {
            v.METADATA: self.metadata, v.LIST_OFFSETS: self.list_offsets,
            v.FIND_COORDINATOR: self.find_coordinator, v.JOIN_GROUP: self.join_group,
            v.SYNC_GROUP: self.sync_group, v.HEARTBEAT: self.heartbeat, v.LEAVE_GROUP: self.leave_group,
            v.OFFSET_COMMIT: self.offset_commit, v.OFFSET_FETCH: self.offset_fetch,
            v.DESCRIBE_GROUPS: self.describe_groups, v.LIST_GROUPS: self.list_groups,
            v.CREATE_TOPICS: self.create_topics, v.DELETE_TOPICS: self.delete_topics,
            v.CREATE_PARTITIONS: self.create_partitions, v.DESCRIBE_CONFIGS: self.describe_configs,
            v.INIT_PRODUCER_ID: self.init_producer_id, v.SASL_HANDSHAKE: self.sasl_handshake,
            v.SASL_AUTHENTICATE: self.sasl_authenticate,
        }
        return {key: self._wrap(fn) for key, fn in table.items()}  # type: ignore[misc]

    @staticmethod
    def _wrap(fn: Any) -> Handler:
        def handler(conn: KafkaConnection, slot: Slot, ctx: Any) -> None:
            req = decode_request(slot.api_key, slot.version, _body(ctx))
            fn(conn, slot, req)
        return handler

    @staticmethod
    def _reply(slot: Slot, values: dict[str, Any]) -> None:
        slot.reply(encode_response(slot.api_key, slot.version, values))

    # --- ApiVersions ---------------------------------------------------------------------------

    def api_versions(self, conn: KafkaConnection, slot: Slot, ctx: Reader) -> None:
        keys = [{"api_key": k, "min_version": lo, "max_version": hi}
                for k, (lo, hi) in sorted(versions.SUPPORTED.items())]
        lo, hi = versions.SUPPORTED[versions.API_VERSIONS]
        if not lo <= slot.version <= hi:  # KIP-511: answer in v0 with our versions, so the client retries
            slot.version, slot.flexible = 0, False
            slot.reply(encode_response(versions.API_VERSIONS, 0,
                                       {"error_code": errors.UNSUPPORTED_VERSION, "api_keys": keys}))
            return
        self._reply(slot, {"error_code": 0, "api_keys": keys, "throttle_time": 0})

    # --- Metadata ------------------------------------------------------------------------------

    def metadata(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        wanted = req.topics
        if wanted is None or (slot.version == 0 and not wanted):
            names = [n for n, t in self.topics.topics.items() if not t.internal]
        else:
            names = [t.name for t in wanted]
        auto = getattr(req, "allow_auto_topic_creation", True)
        topics = []
        for name in names:
            topic = self.topics.get(name)
            if topic is None and auto:
                topic = self.topics.auto_create(name)
            if topic is None:
                bad = topic_name_error(name) is not None  # librdkafka fails such produces at once
                code = errors.INVALID_TOPIC_EXCEPTION if bad else errors.UNKNOWN_TOPIC_OR_PARTITION
                topics.append({"error_code": code, "name": name, "partitions": []})
                continue
            parts = [{"error_code": 0, "partition_index": p, "leader_id": NODE_ID, "leader_epoch": 0,
                      "replica_nodes": [NODE_ID], "isr_nodes": [NODE_ID], "offline_replicas": []}
                     for p in range(topic.spec.partitions)]
            topics.append({"error_code": 0, "name": name, "is_internal": topic.internal, "partitions": parts})
        self._reply(slot, {
            "throttle_time": 0, "brokers": [self._broker(conn)], "cluster_id": CLUSTER_ID,
            "controller_id": NODE_ID, "topics": topics})

    def _broker(self, conn: KafkaConnection) -> dict[str, Any]:
        """Advertise the address this client reached us on, and the port actually bound."""
        return {"node_id": NODE_ID, "host": conn.local_host, "port": self.server.port, "rack": None}

    # --- ListOffsets ---------------------------------------------------------------------------

    def list_offsets(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            topic = self.topics.get(t.name)
            parts = []
            for p in t.partitions:
                if topic is None or not 0 <= p.partition_index < topic.spec.partitions:
                    parts.append({"partition_index": p.partition_index,
                                  "error_code": errors.UNKNOWN_TOPIC_OR_PARTITION})
                    continue
                lg = topic.logs[p.partition_index]
                ts = p.timestamp
                if ts == EARLIEST:
                    offset = lg.start_offset
                elif ts == LATEST:
                    offset = lg.next_offset
                else:
                    offset, ts = _record_at_time(lg, ts)
                parts.append({"partition_index": p.partition_index, "error_code": 0,
                              "timestamp": -1 if ts < 0 else ts, "offset": offset, "leader_epoch": 0})
            out.append({"name": t.name, "partitions": parts})
        self._reply(slot, {"throttle_time": 0, "topics": out})

    # --- groups --------------------------------------------------------------------------------

    def find_coordinator(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        b = self._broker(conn)
        self._reply(slot, {"throttle_time": 0, "error_code": 0, "error_message": None,
                           "node_id": NODE_ID, "host": b["host"], "port": b["port"]})

    def deliver(self, replies: list[tuple[Hashable, dict[str, Any]]]) -> None:
        """Send the replies the coordinator completed (to requests parked as slots)."""
        for token, values in replies:
            assert isinstance(token, Slot)
            if not token.conn.closed:
                values.setdefault("throttle_time", 0)
                self._reply(token, values)

    def join_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        session_ms = ms(req.session_timeout)
        rebalance = getattr(req, "rebalance_timeout", None)
        rebalance_ms = ms(rebalance) if rebalance is not None and ms(rebalance) >= 0 else session_ms
        protocols = [(p.name, bytes(p.metadata)) for p in req.protocols]
        self.deliver(self.coordinator.join(
            req.group_id, req.member_id, conn.peer_client_id, "/" + conn.peer_host, session_ms,
            rebalance_ms,
            req.protocol_type, protocols, slot.version >= 4, self.server.now_ms(), slot))
        self.server.want_flush()

    def sync_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        assignments = {a.member_id: bytes(a.assignment) for a in req.assignments}
        self.deliver(self.coordinator.sync(req.group_id, req.generation_id, req.member_id, assignments,
                                           self.server.now_ms(), slot))

    def heartbeat(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        now = self.server.now_ms()
        code = self.coordinator.heartbeat(req.group_id, req.generation_id, req.member_id, now)
        self._reply(slot, {"throttle_time": 0, "error_code": code})

    def leave_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        ids = [m.member_id for m in req.members] if slot.version >= 3 else [req.member_id]
        codes, replies = self.coordinator.leave(req.group_id, ids, self.server.now_ms())
        self.deliver(replies)
        top = codes[0] if slot.version < 3 else 0
        self._reply(slot, {"throttle_time": 0, "error_code": top, "members": [
            {"member_id": mid, "group_instance_id": None, "error_code": c} for mid, c in zip(ids, codes)]})

    def offset_commit(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        generation = getattr(req, "generation_id_or_member_epoch", getattr(req, "generation_id", -1))
        code = self.coordinator.check_commit(req.group_id, generation, req.member_id)
        entries = []
        out = []
        for t in req.topics:
            parts = []
            for p in t.partitions:
                pc = code
                if pc == 0 and self.topics.get(t.name) is None:
                    pc = errors.UNKNOWN_TOPIC_OR_PARTITION
                if pc == 0:
                    meta = p.committed_metadata or ""
                    entries.append((t.name, p.partition_index, p.committed_offset, meta))
                parts.append({"partition_index": p.partition_index, "error_code": pc})
            out.append({"name": t.name, "partitions": parts})
        for name, part, offset, meta in entries:
            self.coordinator.commit(req.group_id, name, part, offset, meta)
        if entries:
            self.server.note_append(self.server.offsets.append(req.group_id, entries))
        self.server.hold(lambda ok: self._reply(slot, {"throttle_time": 0, "topics": out}))

    def offset_fetch(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        g = self.coordinator.groups.get(req.group_id)
        if req.topics is None:
            keys: dict[str, list[int]] = {}
            for (t, p) in (g.offsets if g else {}):
                keys.setdefault(t, []).append(p)
            wanted = list(keys.items())
        else:
            wanted = [(t.name, list(t.partition_indexes)) for t in req.topics]
        out = []
        for name, parts in wanted:
            ps = []
            for p in parts:
                got = self.coordinator.committed(req.group_id, name, p)
                offset, meta = got if got is not None else (-1, "")
                ps.append({"partition_index": p, "committed_offset": offset, "metadata": meta,
                           "error_code": 0})
            out.append({"name": name, "partitions": ps})
        self._reply(slot, {"throttle_time": 0, "topics": out, "error_code": 0})

    def describe_groups(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        self._reply(slot, {"throttle_time": 0, "groups": [self.coordinator.describe(g) for g in req.groups]})

    def list_groups(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        listed = [{"group_id": g, "protocol_type": pt, "group_state": st}
                  for g, pt, st in self.coordinator.list()]
        self._reply(slot, {"throttle_time": 0, "error_code": 0, "groups": listed})

    # --- admin ---------------------------------------------------------------------------------

    def create_topics(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            configs = {c.name: c.value for c in t.configs if c.value is not None}
            count = t.num_partitions if not t.assignments else len(t.assignments)
            code, msg = self.topics.create(t.name, count, configs, req.validate_only)
            made = self.topics.get(t.name)
            out.append({"name": t.name, "error_code": code, "error_message": msg,
                        "num_partitions": made.spec.partitions if made and code == 0 else -1,
                        "replication_factor": 1 if code == 0 else -1, "configs": [] if code == 0 else None})
        self._reply(slot, {"throttle_time": 0, "topics": out})

    def delete_topics(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        names = list(req.topic_names)
        for name in names:
            t = self.topics.get(name)
            if t is not None:
                for p in range(t.spec.partitions):
                    self.server.data.waiters.pop((name, p), None)
        out = [{"name": n, "error_code": self.topics.delete(n)} for n in names]
        self._reply(slot, {"throttle_time": 0, "responses": out})

    def create_partitions(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            code, msg = self.topics.add_partitions(t.name, t.count, req.validate_only)
            out.append({"name": t.name, "error_code": code, "error_message": msg})
        self._reply(slot, {"throttle_time": 0, "results": out})

    def describe_configs(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        results = []
        for r in req.resources:
            keys = set(r.configuration_keys) if r.configuration_keys else None
            if r.resource_type == RESOURCE_TOPIC:
                topic = self.topics.get(r.resource_name)
                if topic is None:
                    results.append({"error_code": errors.UNKNOWN_TOPIC_OR_PARTITION, "error_message": None,
                                    "resource_type": r.resource_type, "resource_name": r.resource_name,
                                    "configs": []})
                    continue
                values = {**TOPIC_CONFIG_DEFAULTS, **topic.spec.configs}
                overridden = set(topic.spec.configs)
            elif r.resource_type == RESOURCE_BROKER:
                values, overridden = self._broker_configs(conn), set()
            else:
                values, overridden = dict(TOPIC_CONFIG_DEFAULTS), set()
            configs = [{"name": k, "value": v, "read_only": False, "is_default": k not in overridden,
                        "config_source": CONFIG_SOURCE_TOPIC if k in overridden else CONFIG_SOURCE_DEFAULT,
                        "is_sensitive": False, "synonyms": []}
                       for k, v in sorted(values.items()) if keys is None or k in keys]
            results.append({"error_code": 0, "error_message": None, "resource_type": r.resource_type,
                            "resource_name": r.resource_name, "configs": configs})
        self._reply(slot, {"throttle_time": 0, "results": results})

    def _broker_configs(self, conn: KafkaConnection) -> dict[str, str]:
        """The broker's own settings under Kafka's names (admin tools read the listeners here)."""
        b = self._broker(conn)
        listener = f"PLAINTEXT://{b['host']}:{b['port']}"
        return {"advertised.listeners": listener, "listeners": listener, "broker.id": str(NODE_ID),
                "num.partitions": str(self.topics.num_partitions), "log.cleaner.backoff.ms": "15000",
                "log.retention.check.interval.ms": "300000", "auto.create.topics.enable": "true",
                **{BROKER_NAMES.get(k, k): v for k, v in TOPIC_CONFIG_DEFAULTS.items()}}

    def init_producer_id(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if req.transactional_id:  # no transaction coordinator yet
            self._reply(slot, {"throttle_time": 0, "error_code": errors.UNSUPPORTED_VERSION,
                               "producer_id": -1, "producer_epoch": -1})
            return
        self._reply(slot, {"throttle_time": 0, "error_code": 0,
                           "producer_id": next(self._producer_ids), "producer_epoch": 0})

    # --- SASL PLAIN ----------------------------------------------------------------------------

    def sasl_handshake(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        ok = req.mechanism == "PLAIN"
        self._reply(slot, {"error_code": 0 if ok else errors.UNSUPPORTED_SASL_MECHANISM,
                           "mechanisms": ["PLAIN"]})
        if ok and slot.version == 0:
            conn.sasl_raw = True

    def _check_plain(self, token: bytes) -> str | None:
        parts = token.split(b"\0")
        if len(parts) != 3:
            return None
        user, password = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
        return user if self.server.settings.users.get(user) == password else None

    def sasl_authenticate(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        user = self._check_plain(bytes(req.auth_bytes))
        if user is None:
            self._reply(slot, {"error_code": errors.SASL_AUTHENTICATION_FAILED,
                               "error_message": "Authentication failed: Invalid username or password",
                               "auth_bytes": b""})
            self.server.loop.call_later(0.05, conn.abort, "SASL authentication failed")
            return
        conn.authenticated_as = user
        self._reply(slot, {"error_code": 0, "error_message": None, "auth_bytes": b"", "session_lifetime": 0})

    def sasl_raw_token(self, conn: KafkaConnection, token: bytes) -> None:
        """SaslHandshake v0: the PLAIN token arrives bare; success is an empty frame, failure a close."""
        conn.sasl_raw = False
        user = self._check_plain(token)
        if user is None:
            conn.abort("SASL authentication failed")
            return
        conn.authenticated_as = user
        if conn.transport is not None:
            conn.transport.write(I32.pack(0))


def _record_at_time(lg: StreamLog, ts: int) -> tuple[int, int]:
    """(offset, timestamp) of the first record stamped at or after ``ts`` — Kafka's answer, record
    exact: the time index finds the batch, its records say which one (ListOffsets is not hot)."""
    found = lg.offset_for_time(ts)
    if found is None:
        return -1, -1
    for offset, record_ts, *_ in decode_batches(lg.read(found, 1)):
        if offset >= found and record_ts >= ts:
            return offset, record_ts
    return found, ts
