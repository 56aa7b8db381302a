"""Two scheduler processes over one SQLite file, clocks moved in step by the test (ManualClock in
each): every minute of a simulated hour fires exactly once, and when the leader is SIGKILLed the
other takes over within one lease without losing or repeating a minute."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.support.jobs import ROOT

pytestmark = pytest.mark.timeout(120)
MINUTE = 60_000
LEASE = 30_000
STEP = 10_000
START = 1_790_000_000_000 // MINUTE * MINUTE + 5_000


class SchedulerProcess:
    def __init__(self, url: str, holder: str) -> None:
        argv = [sys.executable, "-m", "tests.support.cron_child", url, holder, str(START), str(LEASE)]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, now_ms: int) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{now_ms}\n")
        self.proc.stdin.flush()

    def reply(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"scheduler process exited ({self.proc.poll()})"
        return json.loads(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def step_all(procs: list[SchedulerProcess], now_ms: int) -> list[dict]:
    """Both processes tick at once (both told before either is read)."""
    for p in procs:
        p.send(now_ms)
    return [p.reply() for p in procs]


def test_two_scheduler_processes_fire_each_minute_once_and_survive_the_leader_being_killed(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    procs = [SchedulerProcess(url, "p0"), SchedulerProcess(url, "p1")]
    runs: list[str] = []
    try:
        now, last_renewal = START, {}
        for _ in range(180):  # 30 simulated minutes, both alive
            now += STEP
            for i, reply in enumerate(step_all(procs, now)):
                runs += reply["runs"]
                if reply["token"] is not None:
                    last_renewal[i] = now
        leaders = [i for i in (0, 1) if last_renewal.get(i) == now]
        assert len(leaders) == 1, "exactly one leader"
        leader, survivor = procs[leaders[0]], procs[1 - leaders[0]]
        leader.kill()
        killed_at, took_over = now, None
        for _ in range(180):  # 30 more minutes, the survivor alone
            now += STEP
            survivor.send(now)
            reply = survivor.reply()
            runs += reply["runs"]
            if took_over is None and reply["token"] is not None:
                took_over = now
    finally:
        for p in procs:
            p.kill()
    assert took_over is not None and took_over - killed_at <= LEASE
    first = START - START % MINUTE + MINUTE
    assert sorted(runs) == [f"cron:tick:{first + i * MINUTE}" for i in range(60)]
    assert max(Counter(runs).values()) == 1
