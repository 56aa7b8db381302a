"""Persistent messages side by side: FerryMQ (fsync always) and RabbitMQ, one run, same generator.

    .venv/bin/python scripts/bench_persistent.py --seconds 10 > bench-results/persistent.json

Durable queue, persistent messages, publisher confirms, manual acks; prefetch 50 and 500; 100 B and
4 KiB. FerryMQ's fsync and commit counts come from its shutdown log line.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ferrymq.bench.rabbitmq_node import available, free_port, start_rabbitmq
from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Workload

SCENARIOS = {f"{size}B-prefetch{pf}": {"size": size, "prefetch": pf}
             for size in (100, 4096) for pf in (50, 500)}


def workload(seconds: float, size: int, prefetch: int) -> Workload:
    """One producer (confirm window 500, writes of 50), one consumer acking each delivery."""
    return Workload(kind="max", size=size, seconds=seconds, confirm=True, confirm_window=500,
                    prefetch=prefetch, persistent=True, batch=50, warmup=0.5)


def measure(url: str, pid: int, seconds: float, tag: str) -> dict[str, Any]:
    out = {}
    for name, over in SCENARIOS.items():
        r = run_workload(Target(tag, url, "amqp", pid), workload(seconds, **over))
        if r["errors"]:
            raise RuntimeError("; ".join(r["errors"]))
        out[name] = {"msgs_per_s": r["consumed_per_s"], "confirmed_per_s": r["confirmed_per_s"] or 0.0,
                     "broker_cores": r["cpu"]["broker"],
                     "p99_ms": (r["latency_ms"] or {}).get("p99", 0)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ferrymq-bench-") as tmp:
        port = free_port()
        log_path = Path(tmp) / "serve.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port", str(port),
                                     "--kafka-port", "0",
               "--http-port", "0", "--data-dir", f"{tmp}/data", "--fsync", "always",
                                     "--log-level", "info"],
                                    stdout=log, stderr=subprocess.STDOUT)
        time.sleep(2.0)
        started = time.monotonic()
        try:
            results["ferrymq"] = measure(f"amqp://guest:guest@127.0.0.1:{port}/%2F", proc.pid,
                                         args.seconds, "ferrymq")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        elapsed = time.monotonic() - started
        m = re.search(r"commit: (\d+) writes, (\d+) commits, (\d+) fsyncs", log_path.read_text())
        if m:
            fsyncs = int(m.group(3))
            total = sum(r["confirmed_per_s"] for r in results["ferrymq"].values()) * args.seconds
            results["ferrymq_fsync"] = {"fsyncs": fsyncs, "commits": int(m.group(2)),
                                        "fsyncs_per_s": fsyncs / elapsed,
                                        "msgs_per_fsync": total / max(fsyncs, 1)}
    if available():
        node = start_rabbitmq()
        try:
            results["rabbitmq"] = measure(node.amqp_url, node.pid, args.seconds, "rabbitmq")
        finally:
            node.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
