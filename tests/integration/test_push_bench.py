"""The fan-out benchmark runs end to end at a small size: a private ``ferrymq serve``, its client
processes, the paced publisher; every message reaches every client and is counted in the window."""

from __future__ import annotations

import json
import subprocess
import sys


def test_push_fanout_delivers_every_message_to_every_client_and_reports_latency() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ferrymq.bench.push_fanout", "--clients", "4", "--rate", "50",
         "--seconds", "1", "--warmup", "0.5", "--procs", "2"],
        capture_output=True, text=True, timeout=90, check=True)
    report = json.loads(out.stdout)
    assert report["skipped_total"] == 0 and report["closed_early"] == 0
    assert report["delivered_total"] == report["published"] * 4
    assert report["latency_ms"]["samples"] == report["expected_deliveries_in_window"] == 200
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
