"""The pure group coordinator: MEMBER_ID_REQUIRED, joins completing together, sync, rebalances on
leave and on session timeout, generations, and the idempotent-producer sequence rules."""

from __future__ import annotations

from ferrymq.core import groups, streams
from ferrymq.core.groups import Coordinator

PROTO = [("range", b"meta")]


def _join(c: Coordinator, member: str, token: str, now: int = 0, version_4: bool = True):
    return c.join("g", member, "client", "/h", 10_000, 5_000, "consumer", PROTO, version_4, now, token)


def _first_member(c: Coordinator, token: str) -> str:
    [(tok, reply)] = _join(c, "", token)
    assert tok == token and reply["error_code"] == groups.MEMBER_ID_REQUIRED
    return reply["member_id"]


def test_two_members_join_sync_and_split():
    c = Coordinator()
    a = _first_member(c, "a0")
    [(_, reply)] = _join(c, a, "a1")
    assert reply["leader"] == a and reply["generation_id"] == 1
    want = {"error_code": 0, "protocol_type": "consumer", "protocol_name": "range", "assignment": b"all"}
    assert c.sync("g", 1, a, {a: b"all"}, 0, "a2") == [("a2", want)]
    b = _first_member(c, "b0")
    assert _join(c, b, "b1") == []  # waits for a to rejoin
    assert c.heartbeat("g", 1, a, 10) == groups.REBALANCE_IN_PROGRESS
    replies = dict(_join(c, a, "a3"))
    assert replies["a3"]["leader"] == a and len(replies["a3"]["members"]) == 2
    assert replies["b1"]["members"] == [] and replies["b1"]["generation_id"] == 2
    assert c.sync("g", 2, b, {}, 0, "b2") == []  # follower waits for the leader
    done = dict(c.sync("g", 2, a, {a: b"p0", b: b"p1"}, 0, "a4"))
    assert done["a4"]["assignment"] == b"p0" and done["b2"]["assignment"] == b"p1"
    assert c.heartbeat("g", 2, b, 20) == groups.NONE
    assert c.heartbeat("g", 1, b, 20) == groups.ILLEGAL_GENERATION


def test_leave_and_session_timeout_rebalance():
    c = Coordinator()
    a = _first_member(c, "a0")
    _join(c, a, "a1")
    c.sync("g", 1, a, {}, 0, "a2")
    b = _first_member(c, "b0")
    _join(c, b, "b1")
    _join(c, a, "a3")
    c.sync("g", 2, a, {}, 0, "a4")
    codes, _ = c.leave("g", [b], 100)
    assert codes == [groups.NONE]
    assert c.heartbeat("g", 2, a, 100) == groups.REBALANCE_IN_PROGRESS
    [(_, reply)] = _join(c, a, "a5", now=100)
    assert reply["generation_id"] == 3 and len(reply["members"]) == 1
    c.sync("g", 3, a, {}, 100, "a6")
    assert c.tick(100 + 10_001) == []  # a went silent past its session timeout: removed
    assert c.groups["g"].members == {} and c.groups["g"].state == groups.EMPTY


def test_unknown_member_and_rebalance_timeout():
    c = Coordinator()
    assert _join(c, "nobody", "x")[0][1]["error_code"] == groups.UNKNOWN_MEMBER_ID
    a = _first_member(c, "a0")
    _join(c, a, "a1")
    c.sync("g", 1, a, {}, 0, "a2")
    b = _first_member(c, "b0")
    assert _join(c, b, "b1", now=1_000) == []
    # a never rejoins: after the rebalance timeout the join completes without it
    [(tok, reply)] = c.tick(1_000 + 5_000)
    assert tok == "b1" and reply["leader"] == b and list(c.groups["g"].members) == [b]


def test_offsets_commit_rules():
    c = Coordinator()
    assert c.check_commit("solo", -1, "") == groups.NONE
    c.commit("solo", "t", 0, 42, "m")
    assert c.committed("solo", "t", 0) == (42, "m")
    a = _first_member(c, "a0")
    _join(c, a, "a1")
    assert c.check_commit("g", 1, a) == groups.REBALANCE_IN_PROGRESS  # joined, not synced yet
    c.sync("g", 1, a, {a: b"all"}, 0, "a2")
    assert c.check_commit("g", 1, a) == groups.NONE
    assert c.check_commit("g", 0, a) == groups.ILLEGAL_GENERATION
    assert c.check_commit("g", 1, "other") == groups.UNKNOWN_MEMBER_ID
    b = _first_member(c, "b0")
    assert _join(c, b, "b1") == []  # the group prepares a rebalance, waiting for a
    assert c.check_commit("g", 1, a) == groups.NONE  # a commits before giving its partitions up


def test_producer_sequences():
    s = streams.ProducerState()
    assert s.check(7, 0, 0, 3) == (streams.ACCEPT, -1)
    s.record(7, 0, 0, 3, base_offset=100)
    assert s.check(7, 0, 0, 3) == (streams.DUPLICATE_SEQUENCE_NUMBER, 100)
    assert s.check(7, 0, 5, 1)[0] == streams.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert s.check(7, 0, 3, 2) == (streams.ACCEPT, -1)
    assert s.check(7, 1, 0, 1) == (streams.ACCEPT, -1)  # a new epoch restarts at 0
    s.record(7, 1, 0, 1, 200)
    assert s.check(7, 0, 3, 1)[0] == streams.INVALID_PRODUCER_EPOCH
    assert s.check(-1, -1, -1, 5) == (streams.ACCEPT, -1)


def test_topic_names_and_configs():
    assert streams.topic_name_error("ok.name_1-x") is None
    assert streams.topic_name_error("bad/name") and streams.topic_name_error("..")
    assert streams.topic_name_error("x" * 250)
    assert streams.config_error({"retention.ms": "abc"})
    assert streams.config_error({"cleanup.policy": "compact,delete"}) is None
    assert streams.config_error({"dummy.doesntexist": "x"})  # Kafka: INVALID_CONFIG
    assert streams.config_error({"min.cleanable.dirty.ratio": "0.5"}) is None


def test_the_group_timer_reads_the_injected_clock_only():
    """Session timeouts move with the broker's clock, not the wall clock: a ManualClock replays them."""
    import asyncio

    from ferrymq.clock import ManualClock
    from ferrymq.server.kafka.groups import GroupApis

    async def main() -> None:
        clock = ManualClock()
        c = Coordinator()
        timer = GroupApis(c, None, None, None, clock, asyncio.get_running_loop())  # type: ignore[arg-type]
        now = clock.monotonic_ms()
        a = _join(c, "", "a0", now)[0][1]["member_id"]
        _join(c, a, "a1", now)
        c.sync("g", 1, a, {}, now, "a2")
        timer.start()
        await asyncio.sleep(0.3)  # several ticks of real time; the manual clock has not moved
        assert a in c.groups["g"].members
        clock.advance(10_001)
        await asyncio.sleep(0.25)
        assert c.groups["g"].members == {}  # the next tick saw the session expire
        timer.stop()

    asyncio.run(main())
