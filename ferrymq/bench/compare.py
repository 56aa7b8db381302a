"""Run the same AMQP workloads against FerryMQ and RabbitMQ in one go, side by side.

    python -m ferrymq.bench.compare --seconds 10 > bench-results/compare.json

FerryMQ runs as a real `ferrymq serve` process; RabbitMQ as a private node. Prints JSON with a
markdown table for BENCHMARKS.md under "table".
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from ferrymq.bench.amqp_load import Options, run
from ferrymq.bench.rabbitmq_node import available, free_port, start_rabbitmq

SCENARIOS: dict[str, dict[str, Any]] = {
    "confirm-100B": {"size": 100},
    "confirm-4KiB": {"size": 4096},
    "fire-and-forget-100B": {"size": 100, "window": 0},
    "fixed-1k-per-s-100B": {"size": 100, "rate": 1000.0},
}


def start_ferrymq() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ferrymq.cli", "serve", "--amqp-port",
                             str(port), "--log-level", "warning"])
    time.sleep(2.0)
    return proc, f"amqp://guest:guest@127.0.0.1:{port}/%2F"


def measure(url: str, pid: int, seconds: float, queue: str) -> dict[str, Any]:
    out = {}
    for name, overrides in SCENARIOS.items():
        opts = Options(url=url, seconds=seconds, broker_pid=pid, queue=f"{queue}-{name}",
                       **overrides)
        out[name] = run(opts)
    return out


def row(name: str, broker: str, r: dict[str, Any]) -> str:
    lat = r["consumer"]["latency_ns"]
    return (f"| {name} | {broker} | {r['consumed_per_s']:,.0f} | {r['broker_cpu']:.2f} | "
            f"{r['producer']['cpu']:.2f} / {r['consumer']['cpu']:.2f} | "
            f"{lat.get('p50', 0) / 1e6:.2f} | {lat.get('p99', 0) / 1e6:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "machine": f"{platform.node()} {platform.machine()}"}
    proc, url = start_ferrymq()
    try:
        results["ferrymq"] = measure(url, proc.pid, args.seconds, "bench")
    finally:
        proc.terminate()
        proc.wait(10)
    if available():
        node = start_rabbitmq()
        try:
            results["rabbitmq"] = measure(node.amqp_url, node.pid, args.seconds, "bench")
        finally:
            node.stop()
    lines = ["| scenario | broker | msgs/s consumed | broker cores | generator cores (prod / cons)"
             " | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for name in SCENARIOS:
        for broker in ("ferrymq", "rabbitmq"):
            if broker in results:
                lines.append(row(name, broker, results[broker][name]))
    results["table"] = "\n".join(lines)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
