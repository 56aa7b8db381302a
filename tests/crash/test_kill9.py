"""kill -9 loops against a real `ferrymq serve` process: nothing confirmed is ever lost.

CI runs 20 cycles; `make soak` runs the same loop longer (CRASH_CYCLES).
"""

from __future__ import annotations

import os

import pytest

from ferrymq.chaos.crash_loop import run

CYCLES = int(os.environ.get("CRASH_CYCLES", "20"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("fsync", ["always", "never"])
def test_kill9_loop_loses_no_confirmed_message_and_never_redelivers_a_processed_ack(tmp_path, fsync):
    # fsync=never still survives kill -9 (the page cache outlives the process), not a power cut.
    cycles = CYCLES if fsync == "always" else max(5, CYCLES // 4)
    report = run(tmp_path, cycles, fsync=fsync)
    assert report.confirmed > cycles * 20, f"too little traffic to prove anything: {report}"
    assert not report.lost, f"confirmed messages lost (seed {report.seed}): {report.lost}"
    assert not report.violations, f"seed {report.seed}: {report.violations}"
    assert report.acked > 0
