"""OffsetDelete (47) and DeleteGroups (42) on the core's Coordinator.

What goes is written to the offsets log as tombstones (a record with the offset's key and no
value, as Kafka writes them to ``__consumer_offsets``), so a restart does not bring it back; the
answer waits in the commit pipeline for the fsync that covers them, as OffsetCommit's does.
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.groups import Coordinator, Group
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.admin_groups import offset_delete_verdict, subscribed_topics
from ferrymq.protocols.kafka.offsets import OffsetsLog
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply


class GroupAdminApis:
    """Collaborators: the coordinator (core), the offsets log, the commit pipeline."""

    def __init__(self, coordinator: Coordinator, offsets: OffsetsLog, commit: CommitPipeline) -> None:
        self.coordinator = coordinator
        self.offsets = offsets
        self.commit = commit

    def handlers(self) -> dict[int, Handler]:
        return {versions.OFFSET_DELETE: decoded(self.offset_delete),
                versions.DELETE_GROUPS: decoded(self.delete_groups)}

    def _send_after_commit(self, slot: Slot, values: dict[str, Any], appended: bool) -> None:
        if appended:
            self.commit.note_append(self.offsets.log)
        self.commit.hold(lambda ok: reply(slot, values))

    def offset_delete(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        g = self.coordinator.groups.get(req.group_id) if req.group_id else None
        code = errors.INVALID_GROUP_ID if not req.group_id else errors.GROUP_ID_NOT_FOUND
        if g is not None:
            code = offset_delete_verdict(g.state, g.protocol_type, bool(g.members))
        if code != errors.NONE or g is None:
            reply(slot, {"error_code": code, "throttle_time": 0, "topics": []})
            return
        out, gone = _offsets_to_delete(g, req.topics)
        if gone:
            self.offsets.append_tombstones(g.group_id, gone)
            self.coordinator.forget_offsets(g.group_id, gone)
        values = {"error_code": errors.NONE, "throttle_time": 0, "topics": out}
        self._send_after_commit(slot, values, bool(gone))

    def delete_groups(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        results = []
        appended = False
        for group_id in req.groups_names:
            g = self.coordinator.groups.get(group_id)
            keys = list(g.offsets) if g is not None else []
            code = self.coordinator.delete(group_id) if group_id else errors.INVALID_GROUP_ID
            if code == errors.NONE and keys:
                self.offsets.append_tombstones(group_id, keys)
                appended = True
            results.append({"group_id": group_id, "error_code": code})
        self._send_after_commit(slot, {"throttle_time": 0, "results": results}, appended)


def _offsets_to_delete(g: Group, topics: Any) -> tuple[list[dict[str, Any]], list[tuple[str, int]]]:
    """The response's topics, and the committed offsets that go: none of a topic a live member is
    subscribed to (GROUP_SUBSCRIBED_TO_TOPIC), every one asked of any other."""
    subscribed = _subscriptions(g)
    gone: list[tuple[str, int]] = []
    out = []
    for t in topics:
        pc = errors.GROUP_SUBSCRIBED_TO_TOPIC if t.name in subscribed else errors.NONE
        parts = [p.partition_index for p in t.partitions]
        if pc == errors.NONE:
            gone += [(t.name, p) for p in parts if (t.name, p) in g.offsets]
        out.append({"name": t.name, "partitions": [{"partition_index": p, "error_code": pc} for p in parts]})
    return out, gone


def _subscriptions(g: Group) -> set[str]:
    """Every topic some live member of a consumer group is subscribed to."""
    topics: set[str] = set()
    for m in g.members.values():
        topics |= subscribed_topics(m.metadata_for(g.protocol or ""))
    return topics
