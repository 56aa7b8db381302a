"""The group coordinator's requests (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
OffsetCommit, OffsetFetch, DescribeGroups, ListGroups) on the core's Coordinator, and its timer.

Committed offsets are appended to the offsets log and their responses held in the commit pipeline
until the fsync that covers them, as produce responses are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.core.groups import Coordinator
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import versions
from ferrymq.protocols.kafka.entities import ms
from ferrymq.protocols.kafka.offsets import OffsetsLog, commit_offsets
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import NODE_ID, Handler, broker_info, decoded, reply
from ferrymq.server.kafka.timer import DeadlineTimer


class GroupApis:
    """Collaborators: the coordinator (core), the offsets log, the topics (to refuse unknown ones),
    the commit pipeline, the clock its deadlines are measured on, and the loop for its timer."""

    def __init__(self, coordinator: Coordinator, offsets: OffsetsLog, topics: TopicRegistry,
                 commit: CommitPipeline, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        self.coordinator = coordinator
        self.offsets = offsets
        self.topics = topics
        self.commit = commit
        self.clock = clock
        self.loop = loop
        self.timer = DeadlineTimer(loop, clock, coordinator.next_deadline_ms, self._tick)

    def handlers(self) -> dict[int, Handler]:
        v = versions
        table = {
            v.FIND_COORDINATOR: self.find_coordinator, v.JOIN_GROUP: self.join_group,
            v.SYNC_GROUP: self.sync_group, v.HEARTBEAT: self.heartbeat, v.LEAVE_GROUP: self.leave_group,
            v.OFFSET_COMMIT: self.offset_commit, v.OFFSET_FETCH: self.offset_fetch,
            v.DESCRIBE_GROUPS: self.describe_groups, v.LIST_GROUPS: self.list_groups,
        }
        return {key: decoded(fn) for key, fn in table.items()}

    # --- timers are data: the coordinator says when it next needs a tick -------------------------

    def start(self) -> None:
        self.timer.start()

    def stop(self) -> None:
        self.timer.stop()

    def _tick(self, now_ms: int) -> None:
        self.deliver(self.coordinator.tick(now_ms))

    # --- requests -----------------------------------------------------------------------------------

    def find_coordinator(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        b = broker_info(conn)
        reply(slot, {"throttle_time": 0, "error_code": 0, "error_message": None,
                     "node_id": NODE_ID, "host": b["host"], "port": b["port"]})

    def deliver(self, replies: list[tuple[Hashable, dict[str, Any]]]) -> None:
        """Send the replies the coordinator completed (to requests parked as slots)."""
        for token, values in replies:
            assert isinstance(token, Slot)
            if not token.conn.closed:
                values.setdefault("throttle_time", 0)
                reply(token, values)

    def join_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        session_ms = ms(req.session_timeout)
        rebalance = getattr(req, "rebalance_timeout", None)
        rebalance_ms = ms(rebalance) if rebalance is not None and ms(rebalance) >= 0 else session_ms
        protocols = [(p.name, bytes(p.metadata)) for p in req.protocols]
        self.deliver(self.coordinator.join(
            req.group_id, req.member_id, conn.peer_client_id, "/" + conn.peer_host, session_ms,
            rebalance_ms,
            req.protocol_type, protocols, slot.version >= 4, self.clock.monotonic_ms(), slot))
        self.commit.request_turn_end()

    def sync_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        assignments = {a.member_id: bytes(a.assignment) for a in req.assignments}
        self.deliver(self.coordinator.sync(req.group_id, req.generation_id, req.member_id, assignments,
                                           self.clock.monotonic_ms(), slot))

    def heartbeat(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        now = self.clock.monotonic_ms()
        code = self.coordinator.heartbeat(req.group_id, req.generation_id, req.member_id, now)
        reply(slot, {"throttle_time": 0, "error_code": code})

    def leave_group(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        ids = [m.member_id for m in req.members] if slot.version >= 3 else [req.member_id]
        codes, replies = self.coordinator.leave(req.group_id, ids, self.clock.monotonic_ms())
        self.deliver(replies)
        top = codes[0] if slot.version < 3 else 0
        reply(slot, {"throttle_time": 0, "error_code": top, "members": [
            {"member_id": mid, "group_instance_id": None, "error_code": c} for mid, c in zip(ids, codes)]})

    def offset_commit(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        generation = getattr(req, "generation_id_or_member_epoch", getattr(req, "generation_id", -1))
        wanted = [(t.name, [(p.partition_index, p.committed_offset, p.committed_metadata)
                            for p in t.partitions]) for t in req.topics]
        out, lg = commit_offsets(self.coordinator, self.topics, self.offsets, req.group_id, generation,
                                 req.member_id, wanted)
        if lg is not None:
            self.commit.note_append(lg)
        self.commit.hold(lambda ok: reply(slot, {"throttle_time": 0, "topics": out}))

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
        reply(slot, {"throttle_time": 0, "topics": out, "error_code": 0})

    def describe_groups(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        reply(slot, {"throttle_time": 0, "groups": [self.coordinator.describe(g) for g in req.groups]})

    def list_groups(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        listed = [{"group_id": g, "protocol_type": pt, "group_state": st}
                  for g, pt, st in self.coordinator.list()]
        reply(slot, {"throttle_time": 0, "error_code": 0, "groups": listed})
