"""Scenario 14's second half: the advice is run as a lab scenario, and the run checks it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ferrymq.lab.advise_command import main as advise_main


def test_advice_is_written_as_a_scenario_and_run_to_check_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert advise_main(["--rate", "300", "--job-ms", "5", "--job-ms-p99", "20", "--run", "--short"]) == 0
    scenario = (tmp_path / "lab-results" / "advised-queue.toml").read_text()
    assert 'driver = "task_queue"' in scenario
    report = next((tmp_path / "lab-results").glob("advised-queue-*.json"))
    run = json.loads(report.read_text())
    (series,) = run["series"]
    advised = run["params"]["workers"][0]
    assert series["variant"] == f"{advised} workers" and advised >= 2  # 300/s x 5 ms needs more than one
    assert series["books"]["lost"] == 0 and series["books"]["confirmed"] > 0
    assert "none lost" in capsys.readouterr().err
