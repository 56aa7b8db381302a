"""The Kafka APIs other than Produce, Fetch, the group coordinator's and SASL, on kio's entities:
versions, metadata, ListOffsets and topic admin (producer ids are handed out here).

Each handler reads the decoded request and answers with a plain dict shaped like the newest version;
``entities.encode_response`` fits it to the version the client asked for.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.streams import topic_name_error
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.entities import encode_response
from ferrymq.protocols.kafka.partitions import READ_COMMITTED
from ferrymq.protocols.kafka.primitives import Reader
from ferrymq.protocols.kafka.records import decode_batches
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import NODE_ID, Handler, broker_info, decoded, reply
from ferrymq.storage.stream_log import StreamLog

log = logging.getLogger("ferrymq.kafka")

CLUSTER_ID = "ferrymq-cluster"
NOT_ASKED = -(2**31)  # authorized operations not requested (the schema's default)
# Kafka's operations on the CLUSTER resource (AclOperation codes): all of them, with no authorizer.
_CLUSTER_OPS = (5, 7, 8, 9, 10, 11, 12)  # CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE/ALTER_CONFIGS IDEMP.
CLUSTER_OPERATIONS = sum(1 << op for op in _CLUSTER_OPS)
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


class KafkaApis:
    """``topics``: the core's registry; ``clock``: producer ids unique across restarts;
    ``forget_topic(name, partitions)``: parked fetches of a deleted topic go."""

    def __init__(self, topics: TopicRegistry, clock: Clock,
                 forget_topic: Callable[[str, int], None]) -> None:
        self.topics = topics
        self.forget_topic = forget_topic
        self._producer_ids = itertools.count(clock.now_ms() * 1000)  # unique across restarts

    def handlers(self) -> dict[int, Handler]:
        v = versions
        table = {
            v.METADATA: self.metadata, v.LIST_OFFSETS: self.list_offsets,
            v.CREATE_TOPICS: self.create_topics, v.DELETE_TOPICS: self.delete_topics,
            v.CREATE_PARTITIONS: self.create_partitions, v.DESCRIBE_CONFIGS: self.describe_configs,
        }
        return {key: decoded(fn) for key, fn in table.items()}

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
        reply(slot, {"error_code": 0, "api_keys": keys, "throttle_time": 0})

    # --- Metadata ------------------------------------------------------------------------------

    def metadata(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        wanted = req.topics
        if wanted is None or (slot.version == 0 and not wanted):
            names = self.topics.all_names()
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
        asked = getattr(req, "include_cluster_authorized_operations", False)
        reply(slot, {
            "throttle_time": 0, "brokers": [broker_info(conn)], "cluster_id": CLUSTER_ID,
            "controller_id": NODE_ID, "topics": topics,
            "cluster_authorized_operations": CLUSTER_OPERATIONS if asked else NOT_ASKED})

    # --- ListOffsets ---------------------------------------------------------------------------

    def list_offsets(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        committed = getattr(req, "isolation_level", 0) == READ_COMMITTED
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
                elif ts == LATEST and committed:  # read_committed: the last stable offset
                    offset = topic.producers[p.partition_index].txns.stable_offset(lg.next_offset)
                elif ts == LATEST:
                    offset = lg.next_offset
                else:
                    offset, ts = _record_at_time(lg, ts)
                parts.append({"partition_index": p.partition_index, "error_code": 0,
                              "timestamp": -1 if ts < 0 else ts, "offset": offset, "leader_epoch": 0})
            out.append({"name": t.name, "partitions": parts})
        reply(slot, {"throttle_time": 0, "topics": out})

    # --- admin ---------------------------------------------------------------------------------

    def create_topics(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            configs = {c.name: c.value for c in t.configs if c.value is not None}
            count = t.num_partitions if not t.assignments else len(t.assignments)
            code, msg = self.topics.create(t.name, count, configs, req.validate_only)
            made = self.topics.get(t.name)
            if made is not None and code == errors.NONE and not req.validate_only:
                log.info("created topic %s with %d partition(s)", t.name, made.spec.partitions)
            out.append({"name": t.name, "error_code": code, "error_message": msg,
                        "num_partitions": made.spec.partitions if made and code == 0 else -1,
                        "replication_factor": 1 if code == 0 else -1, "configs": [] if code == 0 else None})
        reply(slot, {"throttle_time": 0, "topics": out})

    def delete_topics(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        names = list(req.topic_names)
        for name in names:
            t = self.topics.get(name)
            if t is not None:
                self.forget_topic(name, t.spec.partitions)
        out = [{"name": n, "error_code": self._delete(n)} for n in names]
        reply(slot, {"throttle_time": 0, "responses": out})

    def _delete(self, name: str) -> int:
        code = self.topics.delete(name)
        if code == errors.NONE:
            log.info("deleted topic %s", name)
        return code

    def create_partitions(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        out = []
        for t in req.topics:
            code, msg = self.topics.add_partitions(t.name, t.count, req.validate_only)
            out.append({"name": t.name, "error_code": code, "error_message": msg})
        reply(slot, {"throttle_time": 0, "results": out})

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
                values = {**self.topics.defaults, **topic.spec.configs}
                overridden = set(topic.spec.configs)
            elif r.resource_type == RESOURCE_BROKER:
                values, overridden = self._broker_configs(conn), set()
            else:
                values, overridden = dict(self.topics.defaults), set()
            configs = [{"name": k, "value": v, "read_only": False, "is_default": k not in overridden,
                        "config_source": CONFIG_SOURCE_TOPIC if k in overridden else CONFIG_SOURCE_DEFAULT,
                        "is_sensitive": False, "synonyms": []}
                       for k, v in sorted(values.items()) if keys is None or k in keys]
            results.append({"error_code": 0, "error_message": None, "resource_type": r.resource_type,
                            "resource_name": r.resource_name, "configs": configs})
        reply(slot, {"throttle_time": 0, "results": results})

    def _broker_configs(self, conn: KafkaConnection) -> dict[str, str]:
        """The broker's own settings under Kafka's names (admin tools read the listeners here)."""
        b = broker_info(conn)
        listener = f"{'SSL' if conn.tls else 'PLAINTEXT'}://{b['host']}:{b['port']}"
        return {"advertised.listeners": listener, "listeners": listener, "broker.id": str(NODE_ID),
                "num.partitions": str(self.topics.num_partitions), "log.cleaner.backoff.ms": "15000",
                "log.retention.check.interval.ms": "300000", "auto.create.topics.enable": "true",
                **{BROKER_NAMES.get(k, k): v for k, v in self.topics.defaults.items()}}

    def new_producer_id(self) -> int:
        """A producer id no other producer of this broker has had, before or after a restart."""
        return next(self._producer_ids)


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
