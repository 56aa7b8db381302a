"""The classic consumer-group coordinator (JoinGroup / SyncGroup / Heartbeat / LeaveGroup, offsets),
as a pure state machine: requests in with ``now_ms``, replies out.

Why replies are returned rather than sent: a JoinGroup is answered only when every member has
rejoined (or the rebalance timeout passes), and a follower's SyncGroup only when the leader's
arrives. Each waiting request carries an opaque ``token`` from the server; any call (or ``tick``)
returns the ``(token, reply)`` pairs it completed. Assignment bytes are opaque here, as in Kafka.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.kafka_codes import (
    GROUP_ID_NOT_FOUND,
    ILLEGAL_GENERATION,
    INCONSISTENT_GROUP_PROTOCOL,
    INVALID_GROUP_ID,
    INVALID_SESSION_TIMEOUT,
    MEMBER_ID_REQUIRED,
    NON_EMPTY_GROUP,
    NONE,
    REBALANCE_IN_PROGRESS,
    UNKNOWN_MEMBER_ID,
)

EMPTY, PREPARING, COMPLETING = "Empty", "PreparingRebalance", "CompletingRebalance"
STABLE, DEAD = "Stable", "Dead"
SESSION_TIMEOUT_MIN_MS = 1_000  # Kafka's group.min.session.timeout.ms is 6 s; clients in tests go lower
SESSION_TIMEOUT_MAX_MS = 1_800_000  # group.max.session.timeout.ms

Reply = tuple[Hashable, dict[str, Any]]


@dataclass(slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    last_heard_ms: int
    join_token: Hashable | None = None
    sync_token: Hashable | None = None
    assignment: bytes = b""

    def metadata_for(self, protocol: str) -> bytes:
        return next((m for n, m in self.protocols if n == protocol), b"")


@dataclass(slots=True)
class Group:
    group_id: str
    state: str = EMPTY
    generation: int = 0
    protocol_type: str = ""
    protocol: str | None = None
    leader: str | None = None
    members: dict[str, Member] = field(default_factory=dict)
    pending: set[str] = field(default_factory=set)  # ids handed out by MEMBER_ID_REQUIRED
    rebalance_deadline_ms: int = 0
    offsets: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)


class Coordinator:
    """Every group of one broker (which is every group's coordinator)."""

    def __init__(self, id_prefix: str = "") -> None:
        self.groups: dict[str, Group] = {}
        self._id_prefix = id_prefix
        self._next_id = 0

    def _group(self, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = Group(group_id)
        return g

    def _new_member_id(self, client_id: str) -> str:
        self._next_id += 1
        return f"{client_id or 'member'}-{self._id_prefix}{self._next_id}"

    # --- JoinGroup ---

    def join(self, group_id: str, member_id: str, client_id: str, host: str, session_timeout_ms: int,
             rebalance_timeout_ms: int, protocol_type: str, protocols: list[tuple[str, bytes]],
             require_known_member: bool, now_ms: int, token: Hashable) -> list[Reply]:
        if not group_id:
            return [(token, _join_error(INVALID_GROUP_ID, member_id))]
        if not SESSION_TIMEOUT_MIN_MS <= session_timeout_ms <= SESSION_TIMEOUT_MAX_MS:
            return [(token, _join_error(INVALID_SESSION_TIMEOUT, member_id))]
        g = self._group(group_id)
        if g.members and (protocol_type != g.protocol_type or not self._common_protocol(g, protocols)):
            return [(token, _join_error(INCONSISTENT_GROUP_PROTOCOL, member_id))]
        if not member_id:
            member_id = self._new_member_id(client_id)
            if require_known_member:
                g.pending.add(member_id)
                return [(token, _join_error(MEMBER_ID_REQUIRED, member_id))]
        elif member_id not in g.members and member_id not in g.pending:
            return [(token, _join_error(UNKNOWN_MEMBER_ID, member_id))]
        g.pending.discard(member_id)
        m = g.members.get(member_id)
        if m is not None and g.state == STABLE and member_id != g.leader and m.protocols == protocols:
            m.last_heard_ms = now_ms  # nothing changed: hand back the current generation
            return [(token, self._join_reply(g, m))]
        if m is None:
            m = g.members[member_id] = Member(member_id, client_id, host, session_timeout_ms,
                                              rebalance_timeout_ms, protocols, now_ms)
        m.protocols = protocols
        m.session_timeout_ms, m.rebalance_timeout_ms = session_timeout_ms, rebalance_timeout_ms
        m.last_heard_ms = now_ms
        m.join_token = token
        g.protocol_type = protocol_type
        out = self._prepare(g, now_ms) if g.state != PREPARING else []
        return out + self._maybe_complete_join(g)

    def _common_protocol(self, g: Group, protocols: list[tuple[str, bytes]]) -> bool:
        names = {n for n, _ in protocols}
        return all(names & {n for n, _ in m.protocols} for m in g.members.values())

    def _prepare(self, g: Group, now_ms: int) -> list[Reply]:
        """Start a rebalance: members must rejoin within the longest rebalance timeout."""
        out: list[Reply] = []
        for m in g.members.values():  # a sync still waiting belongs to the old generation
            if m.sync_token is not None:
                out.append((m.sync_token, {"error_code": REBALANCE_IN_PROGRESS, "assignment": b""}))
                m.sync_token = None
        g.state = PREPARING
        timeout = max((m.rebalance_timeout_ms for m in g.members.values()), default=0)
        g.rebalance_deadline_ms = now_ms + timeout
        return out

    def _maybe_complete_join(self, g: Group, deadline_passed: bool = False) -> list[Reply]:
        if g.state != PREPARING:
            return []
        waiting = [m for m in g.members.values() if m.join_token is None]
        if waiting and not deadline_passed:
            return []
        for m in waiting:  # did not rejoin in time: out of the group
            del g.members[m.member_id]
        if not g.members:
            g.state, g.generation, g.leader, g.protocol = EMPTY, g.generation + 1, None, None
            return []
        g.generation += 1
        g.state = COMPLETING
        if g.leader not in g.members:
            g.leader = next(iter(g.members))
        leader = g.members[g.leader]
        common = set.intersection(*({n for n, _ in m.protocols} for m in g.members.values()))
        g.protocol = next((n for n, _ in leader.protocols if n in common), None)
        out: list[Reply] = []
        for m in g.members.values():
            out.append((m.join_token, self._join_reply(g, m)))
            m.join_token = None
        return out

    def _join_reply(self, g: Group, m: Member) -> dict[str, Any]:
        members = []
        if m.member_id == g.leader:
            members = [{"member_id": x.member_id, "group_instance_id": None,
                        "metadata": x.metadata_for(g.protocol or "")} for x in g.members.values()]
        return {"error_code": NONE, "generation_id": g.generation, "protocol_type": g.protocol_type,
                "protocol_name": g.protocol or "", "leader": g.leader or "", "member_id": m.member_id,
                "members": members}

    # --- SyncGroup ---

    def sync(self, group_id: str, generation: int, member_id: str, assignments: dict[str, bytes],
             now_ms: int, token: Hashable) -> list[Reply]:
        g = self.groups.get(group_id)
        m = g.members.get(member_id) if g else None
        if g is None or m is None:
            return [(token, {"error_code": UNKNOWN_MEMBER_ID, "assignment": b""})]
        if generation != g.generation:
            return [(token, {"error_code": ILLEGAL_GENERATION, "assignment": b""})]
        if g.state == PREPARING:
            return [(token, {"error_code": REBALANCE_IN_PROGRESS, "assignment": b""})]
        m.last_heard_ms = now_ms
        if g.state == STABLE:
            return [(token, self._sync_reply(g, m))]
        m.sync_token = token
        if member_id != g.leader:
            return []
        for mid, x in g.members.items():
            x.assignment = assignments.get(mid, b"")
        g.state = STABLE
        out: list[Reply] = []
        for x in g.members.values():
            if x.sync_token is not None:
                out.append((x.sync_token, self._sync_reply(g, x)))
                x.sync_token = None
        return out

    def _sync_reply(self, g: Group, m: Member) -> dict[str, Any]:
        return {"error_code": NONE, "protocol_type": g.protocol_type, "protocol_name": g.protocol,
                "assignment": m.assignment}

    # --- Heartbeat / LeaveGroup ---

    def heartbeat(self, group_id: str, generation: int, member_id: str, now_ms: int) -> int:
        g = self.groups.get(group_id)
        m = g.members.get(member_id) if g else None
        if g is None or m is None:
            return UNKNOWN_MEMBER_ID
        m.last_heard_ms = now_ms
        if g.state == PREPARING:
            return REBALANCE_IN_PROGRESS
        if generation != g.generation:
            return ILLEGAL_GENERATION
        return NONE

    def leave(self, group_id: str, member_ids: list[str], now_ms: int) -> tuple[list[int], list[Reply]]:
        """Per-member error codes, and replies completed because the group got smaller."""
        g = self.groups.get(group_id)
        codes: list[int] = []
        out: list[Reply] = []
        for mid in member_ids:
            m = g.members.pop(mid, None) if g else None
            codes.append(NONE if m is not None else UNKNOWN_MEMBER_ID)
            if m is not None and m.join_token is not None:
                out.append((m.join_token, _join_error(UNKNOWN_MEMBER_ID, mid)))
            if m is not None and m.sync_token is not None:
                out.append((m.sync_token, {"error_code": UNKNOWN_MEMBER_ID, "assignment": b""}))
        if g is not None and any(c == NONE for c in codes):
            out += self._membership_changed(g, now_ms)
        return codes, out

    def _membership_changed(self, g: Group, now_ms: int) -> list[Reply]:
        if not g.members:
            g.state, g.leader, g.protocol = EMPTY, None, None
            g.generation += 1
            return []
        out = self._prepare(g, now_ms) if g.state != PREPARING else []
        return out + self._maybe_complete_join(g)

    # --- timers ---

    def tick(self, now_ms: int) -> list[Reply]:
        """Expire silent members (session timeout) and finish rebalances whose time is up."""
        out: list[Reply] = []
        for g in list(self.groups.values()):
            expired = [mid for mid, m in g.members.items()
                       if m.join_token is None and now_ms - m.last_heard_ms > m.session_timeout_ms]
            if expired:
                out += self.leave(g.group_id, expired, now_ms)[1]
            if g.state == PREPARING and now_ms >= g.rebalance_deadline_ms:
                out += self._maybe_complete_join(g, deadline_passed=True)
        return out

    def next_deadline_ms(self) -> int | None:
        deadlines = []
        for g in self.groups.values():
            if g.state == PREPARING:
                deadlines.append(g.rebalance_deadline_ms)
            deadlines += [m.last_heard_ms + m.session_timeout_ms + 1 for m in g.members.values()]
        return min(deadlines, default=None)

    # --- offsets ---

    def check_commit(self, group_id: str, generation: int, member_id: str) -> int:
        """Whether a commit may proceed: simple consumers (generation -1) only outside a live group.
        As in Kafka, a member of the current generation may commit while the group prepares a
        rebalance (clients commit what they consumed before giving their partitions up: aiokafka's
        and Java's revoke callbacks), but not between the join and the sync of a new generation."""
        g = self.groups.get(group_id)
        if generation < 0 and not member_id:
            return NONE if g is None or not g.members else UNKNOWN_MEMBER_ID
        if g is None or member_id not in g.members:
            return UNKNOWN_MEMBER_ID
        if generation != g.generation:
            return ILLEGAL_GENERATION
        if g.state == COMPLETING:
            return REBALANCE_IN_PROGRESS
        return NONE

    def commit(self, group_id: str, topic: str, partition: int, offset: int, metadata: str) -> None:
        self._group(group_id).offsets[(topic, partition)] = (offset, metadata)

    def committed(self, group_id: str, topic: str, partition: int) -> tuple[int, str] | None:
        g = self.groups.get(group_id)
        return g.offsets.get((topic, partition)) if g else None

    # --- admin ---

    def describe(self, group_id: str) -> dict[str, Any]:
        g = self.groups.get(group_id)
        if g is None:
            return {"error_code": NONE, "group_id": group_id, "group_state": DEAD, "protocol_type": "",
                    "protocol_data": "", "members": []}
        members = [{"member_id": m.member_id, "group_instance_id": None, "client_id": m.client_id,
                    "client_host": m.host, "member_metadata": m.metadata_for(g.protocol or ""),
                    "member_assignment": m.assignment} for m in g.members.values()]
        return {"error_code": NONE, "group_id": group_id, "group_state": g.state,
                "protocol_type": g.protocol_type, "protocol_data": g.protocol or "", "members": members}

    def list(self) -> list[tuple[str, str, str]]:
        return [(g.group_id, g.protocol_type, g.state) for g in self.groups.values()]

    def forget_offsets(self, group_id: str, keys: Iterable[tuple[str, int]]) -> None:
        """OffsetDelete: these committed offsets go; a group left with no members and no offsets
        goes too (Kafka drops such a group as dead)."""
        g = self.groups.get(group_id)
        if g is None:
            return
        for key in keys:
            g.offsets.pop(key, None)
        if not g.offsets and not g.members and g.state == EMPTY:
            del self.groups[group_id]

    def delete(self, group_id: str) -> int:
        g = self.groups.get(group_id)
        if g is None:
            return GROUP_ID_NOT_FOUND
        if g.members:
            return NON_EMPTY_GROUP
        del self.groups[group_id]
        return NONE


def _join_error(code: int, member_id: str) -> dict[str, Any]:
    return {"error_code": code, "generation_id": -1, "protocol_name": "", "leader": "",
            "member_id": member_id, "members": []}
