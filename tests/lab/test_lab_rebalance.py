"""Scenario 8, consumer-group rebalance, short form on FerryMQ's Kafka listener: members (aiokafka,
processes of their own) join, leave cleanly and are killed -9 under steady produce."""

from __future__ import annotations

from pathlib import Path

from tests.support.lab import run_short

SESSION_MS = 1500


def test_rebalance_moves_every_partition_to_one_live_member_and_loses_nothing(tmp_path: Path) -> None:
    run = run_short("rebalance", ["ferrymq-kafka"], tmp_path, session_ms=SESSION_MS)
    (s,) = run["series"]
    assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0  # committed after processing
    maps = s["tables"]["partition map (member: partitions)"]
    assert [m["after"] for m in maps] == ["start", "c3 joined", "c1 left (LeaveGroup)", "c2 killed -9"]
    gone = [set(), set(), {"c1"}, {"c1", "c2"}]
    for row, absent in zip(maps, gone):
        held = [int(x) for m in ("c0", "c1", "c2", "c3") if row[m] not in ("-", "none")
                for x in row[m].split(",")]
        assert sorted(held) == list(range(6)), row  # each partition with exactly one member
        assert all(row[m] == "-" for m in absent), row
    assert maps[0]["c3"] == "-" and maps[1]["c3"] != "-"  # the joining member got partitions
    changes = s["tables"]["changes"]
    assert all(c["settled after s"] is not None for c in changes)
    # a killed member is noticed only at its session timeout: its partitions cannot move sooner
    # (the session runs from its last heartbeat, up to 0.3 s before the kill)
    assert s["figures"]["kill_pause_s"] >= SESSION_MS / 1000.0 - 0.5
    # duplicates are the uncommitted batches re-read: at most one batch (50) per member per change
    assert sum(c["records read twice"] for c in changes) == s["books"]["duplicates"] <= 3 * 4 * 50
    assert [e["label"] for e in s["events"] if e["kind"] == "phase"] == \
        ["c3 joins", "c1 leaves cleanly", "c2 killed -9"]
    text = " ".join(run["explanation"])
    for c in changes:
        assert f"{c['change']} at {c['at s']:.3g} s" in text
        assert f"{c['records read twice']:,} records were read twice" in text
