"""`ferrymq bench jobs` end to end, tiny: a real `ferrymq serve`, Dramatiq's own client and its
`dramatiq` worker processes; the harness counts every job done and reports positive rates. This
checks the harness, not anyone's throughput (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]


def test_bench_jobs_counts_every_dramatiq_job_and_reports_rates(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "ferrymq.bench", "jobs", "--broker", "ferrymq", "--libs", "dramatiq",
           "--workloads", "drain,latency", "--jobs", "200", "--rate", "100", "--seconds", "1",
           "--out", str(tmp_path), "--json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=50, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    drain, lat = json.loads(done.stdout)["rows"]
    assert (drain["workload"], drain["done"], drain["left"]) == ("drain", 200, 0)
    assert drain["enqueue_jobs_per_s"] > 0 and drain["drain_jobs_per_s"] > 0
    assert lat["workload"] == "latency" and lat["latency_ms"]["samples"] == lat["sent"] == 100
    assert lat["schedule_latency_ms"]["samples"] == 100
    assert 0 < lat["latency_ms"]["p50"] <= lat["latency_ms"]["p99"]
