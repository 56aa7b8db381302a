"""Kafka operations checked against the broker's vhost permissions, the ones AMQP obeys.

Kafka topics are stream queues in vhost ``/``, so a Kafka operation is the AMQP operation on the
same queue, as RabbitMQ's stream plugin maps its own protocol (publishing needs write on the stream,
consuming read, declaring and deleting configure):

- Produce: **write** on the topic (producing to a topic that does not exist also needs configure,
  as auto-creating it is a declare).
- Fetch, ListOffsets, OffsetFetch/OffsetCommit's topics: **read** on the topic.
- CreateTopics, DeleteTopics, CreatePartitions (and Metadata's auto-creation): **configure**.
- Metadata, DescribeConfigs: a topic is visible when any of the three permissions matches it
  (Kafka's Describe is implied by its Read, Write and Alter).
- Consumer groups (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
  OffsetFetch, DescribeGroups): **read** on the group id, as if the group were a queue the consumer
  reads from.

A connection that did not log in with SASL acts as the anonymous Kafka user, ``guest`` (RabbitMQ's
default user), so by default it may do everything, as before; restrict or delete ``guest`` to
restrict it. Refusals answer TOPIC_AUTHORIZATION_FAILED (29) or GROUP_AUTHORIZATION_FAILED (30).
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.core.permissions import CONFIGURE, KINDS, READ, WRITE
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.entities import decode_request
from ferrymq.protocols.kafka.fetch import PartitionData, decode_fetch, encode_fetch_response
from ferrymq.protocols.kafka.primitives import Reader
from ferrymq.protocols.kafka.produce import PartitionResult, ProduceRequest
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, reply, request_body

KAFKA_VHOST = "/"
ANONYMOUS = "guest"


class KafkaAuthorizer:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def user(self, conn: KafkaConnection) -> str:
        return conn.authenticated_as or ANONYMOUS

    def unrestricted(self, conn: KafkaConnection, kind: str) -> bool:
        """The common case, asked once per request so the per-topic checks can be skipped."""
        return self.broker.access.unrestricted(self.user(conn), KAFKA_VHOST, kind)

    def allowed(self, conn: KafkaConnection, kind: str, name: str) -> bool:
        """ferrymq.core.permissions decides, as it does for AMQP."""
        return self.broker.access.allowed(self.user(conn), KAFKA_VHOST, kind, name)

    def administrator(self, conn: KafkaConnection) -> bool:
        """Kafka's cluster operations (the ACL APIs) need RabbitMQ's ``administrator`` tag, the tag
        that lets a user change permissions through the management API."""
        return "administrator" in self.broker.user_tags.get(self.user(conn), [])

    def describable(self, conn: KafkaConnection, name: str) -> bool:
        return any(self.allowed(conn, kind, name) for kind in KINDS)

    # --- per API -------------------------------------------------------------------------------

    def refuse_produce(self, conn: KafkaConnection, req: ProduceRequest,
                       exists: Any) -> list[tuple[str, list[PartitionResult]]]:
        """Take the refused topics out of ``req`` and answer them: no write, or no configure for a
        topic that would be auto-created."""
        if self.unrestricted(conn, WRITE) and self.unrestricted(conn, CONFIGURE):
            return []
        kept, refused = [], []
        for name, parts in req.topics:
            code = (errors.TOPIC_AUTHORIZATION_FAILED if not self.allowed(conn, WRITE, name) else
                    errors.UNKNOWN_TOPIC_OR_PARTITION if not exists(name)
                    and not self.allowed(conn, CONFIGURE, name) else errors.NONE)
            if code == errors.NONE:
                kept.append((name, parts))
            else:
                refused.append((name, [PartitionResult(index, code) for index, _ in parts]))
        req.topics = kept
        return refused

    def refuse_fetch(self, conn: KafkaConnection, slot: Slot, ctx: tuple[Any, Reader]) -> bool:
        """A Fetch naming a topic the user may not read is answered here, whole: its refused
        partitions TOPIC_AUTHORIZATION_FAILED, the others with no records (the client retries them)."""
        if self.unrestricted(conn, READ):
            return False
        r = ctx[1]
        req = decode_fetch(Reader(r.buf, r.pos, r.end), slot.version)
        refused = {name for name, _ in req.topics if not self.allowed(conn, READ, name)}
        if not refused:
            return False
        topics = [(name, [PartitionData(p.partition, errors.TOPIC_AUTHORIZATION_FAILED if name in refused
                                        else errors.NONE) for p in parts]) for name, parts in req.topics]
        slot.reply(encode_fetch_response(slot.version, topics))
        return True

    def topic_code(self, conn: KafkaConnection, kind: str, name: str) -> int:
        """KafkaApis' gate: kind "read", "write", "configure" or "describe" (any of the three)."""
        ok = self.describable(conn, name) if kind == "describe" else self.allowed(conn, kind, name)
        return errors.NONE if ok else errors.TOPIC_AUTHORIZATION_FAILED

    # --- consumer groups: read on the group id -------------------------------------------------

    def guard_groups(self, handlers: dict[int, Handler]) -> dict[int, Handler]:
        """The group APIs' handlers, each behind the group (and its topics') read check."""
        return {key: self._guarded(fn) if key in GROUP_APIS else fn for key, fn in handlers.items()}

    def _guarded(self, inner: Handler) -> Handler:
        def handler(conn: KafkaConnection, slot: Slot, ctx: Any) -> None:
            if self.unrestricted(conn, READ):
                inner(conn, slot, ctx)
                return
            req = decode_request(slot.api_key, slot.version, request_body(ctx))
            refusal = self._group_refusal(conn, slot.api_key, req)
            if refusal is None:
                inner(conn, slot, ctx)
            else:
                reply(slot, refusal)
        return handler

    def _group_refusal(self, conn: KafkaConnection, key: int, req: Any) -> dict[str, Any] | None:
        """The whole response refusing this request, or None when it may go on."""
        v = versions
        if key == v.FIND_COORDINATOR and getattr(req, "key_type", 0) != 0:
            return None  # a transaction coordinator: not a group
        if key == v.DESCRIBE_GROUPS:
            refused = [g for g in req.groups if not self.allowed(conn, READ, g)]
            return {"groups": [_refused_group(g) for g in req.groups]} if refused else None
        group = req.key if key == v.FIND_COORDINATOR else req.group_id
        group_ok = self.allowed(conn, READ, group)
        if key in (v.OFFSET_COMMIT, v.OFFSET_FETCH):
            return self._offsets_refusal(conn, req, group_ok)
        if group_ok:
            return None
        return {"error_code": errors.GROUP_AUTHORIZATION_FAILED, "error_message": GROUP_REFUSED,
                "node_id": -1, "port": -1, "generation_id": -1, "throttle_time": 0}

    def _offsets_refusal(self, conn: KafkaConnection, req: Any, group_ok: bool) -> dict[str, Any] | None:
        """OffsetCommit/OffsetFetch need read on the group and on each topic: refused whole, the
        refused topics' partitions TOPIC_AUTHORIZATION_FAILED, the others not attempted."""
        topics = list(req.topics or ())
        bad = {t.name for t in topics if not self.allowed(conn, READ, t.name)}
        if group_ok and not bad:
            return None

        def code(name: str) -> int:
            return (errors.GROUP_AUTHORIZATION_FAILED if not group_ok else
                    errors.TOPIC_AUTHORIZATION_FAILED if name in bad else errors.OPERATION_NOT_ATTEMPTED)
        out = [{"name": t.name, "partitions": [
            {"partition_index": index, "error_code": code(t.name), "committed_offset": -1, "metadata": None}
            for index in _partition_indexes(t)]} for t in topics]
        top = errors.NONE if group_ok else errors.GROUP_AUTHORIZATION_FAILED
        return {"throttle_time": 0, "topics": out, "error_code": top}


GROUP_REFUSED = "Not authorized to access group"
GROUP_APIS = frozenset({versions.FIND_COORDINATOR, versions.JOIN_GROUP, versions.SYNC_GROUP,
                        versions.HEARTBEAT, versions.LEAVE_GROUP, versions.OFFSET_COMMIT,
                        versions.OFFSET_FETCH, versions.DESCRIBE_GROUPS})


def _partition_indexes(topic: Any) -> list[int]:
    """OffsetFetch names partitions by index, OffsetCommit by entries that carry one."""
    if hasattr(topic, "partition_indexes"):
        return list(topic.partition_indexes)
    return [p.partition_index for p in topic.partitions]


def _refused_group(group: str) -> dict[str, Any]:
    return {"error_code": errors.GROUP_AUTHORIZATION_FAILED, "group_id": group, "group_state": "",
            "protocol_type": "", "protocol_data": "", "members": []}
