"""`ferrymq lab` as a user meets it: the list, and every mistake answered with one line (exit 2)
before anything runs — never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ferrymq.lab.scenario import builtin_names


def _lab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ferrymq.cli", "lab", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


def test_list_describes_every_builtin_scenario_in_one_line() -> None:
    out = _lab("--list")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == builtin_names()
    assert all(len(line.split()) > 3 for line in lines)


@pytest.mark.parametrize("args, needle", [
    (["no-such-scenario"], "no scenario 'no-such-scenario'"),
    (["task-queue", "--target", "amqp://guest:guest@127.0.0.1:1/"], "nothing answers at 127.0.0.1:1"),
    (["task-queue", "--target", "carrier-pigeon"], "unknown target 'carrier-pigeon'"),
    (["task-queue", "--fault", "explode@1s"], "unknown action 'explode'"),
    (["task-queue", "--set", "workers=lots"], "parameter 'workers'"),
    (["task-queue", "--set", "nope=1"], "unknown parameter(s) nope"),
    (["task-queue", "--duration", "soon"], "--duration 'soon'"),
    (["task-queue", "--target", "ferrymq-kafka"], "queue mode (amqp); target ferrymq-kafka is log mode"),
])
def test_a_mistake_gets_one_line_and_exit_2(args: list[str], needle: str) -> None:
    out = _lab(*args)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_users_scenario_file_with_a_mistake_is_named_in_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "mine.toml"
    bad.write_text('driver = "task_queue"\nduraton = 30\n')
    out = _lab(str(bad))
    assert out.returncode == 2 and "mine.toml: unknown key(s) duraton" in out.stderr


def test_a_fault_on_a_broker_given_by_url_is_refused_before_the_run(amqp_url: str) -> None:
    out = _lab("task-queue", "--target", amqp_url, "--fault", "kill@1s")
    assert out.returncode == 2
    assert "needs a broker the lab starts" in out.stderr and len(out.stderr.strip().splitlines()) == 1
