"""The fault player on a real broker process: fsync errors, SIGSTOP/SIGCONT and kill -9 with a
restart, each on the timeline, each leaving the books whole (nothing confirmed is lost)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.lab import run_short


def _only(run: dict) -> dict:
    (series,) = run["series"]
    return series


def test_fsync_errors_nack_publishes_while_they_last_and_lose_nothing_confirmed(tmp_path: Path) -> None:
    s = _only(run_short("task-queue", ["ferrymq"], tmp_path, faults=["fsync-error@30%+1s"], workers=[2]))
    assert s["faults"][0]["label"] == "fsync-error@30%+1s"
    assert s["totals"]["publish_failed"] > 0  # the broker refused to confirm what it could not store
    assert s["books"]["lost"] == 0
    fault = s["faults"][0]
    tl = s["timeline"]
    after = [c for t, c in zip(tl["t"], tl["confirmed_per_s"]) if t > fault["until"] + 0.5]
    assert sum(after) > 0  # and confirmed again once the disk behaved


def test_a_stopped_broker_holds_traffic_and_resumes_with_the_books_whole(tmp_path: Path) -> None:
    s = _only(run_short("task-queue", ["ferrymq"], tmp_path, faults=["stop@30%+1s"], workers=[2]))
    assert [e["kind"] for e in s["events"]] == ["fault", "fault-end"]
    assert s["books"]["lost"] == 0 and s["books"]["duplicates"] == 0
    assert s["faults"][0]["recover_s"] is not None


def test_a_killed_broker_restarts_on_its_data_and_loses_nothing_confirmed(tmp_path: Path) -> None:
    # 14 s: a restart is a whole process start (seconds on a loaded machine), and the run must outlast it
    s = _only(run_short("task-queue", ["ferrymq"], tmp_path, faults=["kill@2s+0.5s"], duration=14,
                        workers=[2]))
    assert any(e["kind"] == "restart" for e in s["events"])
    assert s["books"]["confirmed"] > 0 and s["books"]["lost"] == 0
    tl = s["timeline"]
    restart = next(e["t"] for e in s["events"] if e["kind"] == "restart")
    assert sum(c for t, c in zip(tl["t"], tl["confirmed_per_s"]) if t > restart + 1) > 0  # producing again


def test_network_delay_and_a_cut_go_through_the_proxy_and_lose_nothing(tmp_path: Path) -> None:
    s = _only(run_short("task-queue", ["ferrymq"], tmp_path, faults=["delay@1s+1s,ms=100", "cut@3s+0.5s"],
                        duration=6, workers=[2]))
    assert [f["label"] for f in s["faults"]] == ["delay@1s+1s,ms=100", "cut@3s+0.5s"]
    assert s["books"]["lost"] == 0
    # the cut broke every connection: unacked deliveries came back (to the same or another worker)
    assert s["totals"]["redelivered"] > s["totals"]["failed"]


@pytest.mark.timeout(240)  # 64 KiB bodies onto a tmpfs, then the settle: slow when the cores are shared
def test_a_full_disk_refuses_what_it_cannot_store_and_loses_nothing_confirmed(tmp_path: Path) -> None:
    from ferrymq.lab.disk import Disk

    if not Disk.available():
        pytest.skip("cannot mount a tmpfs here (not root)")
    s = _only(run_short("task-queue", ["ferrymq"], tmp_path, faults=["disk-full@1s+1.5s"], duration=6,
                        workers=[2], size=65536))
    tl, fault = s["timeline"], s["faults"][0]
    during = [c for t, c in zip(tl["t"], tl["confirmed_per_s"]) if fault["t"] + 0.5 < t <= fault["until"]]
    after = [c for t, c in zip(tl["t"], tl["confirmed_per_s"]) if t > fault["until"] + 1]
    assert sum(during) < sum(after)  # confirms stalled (blocked publishers) while the disk was full
    assert s["books"]["lost"] == 0
