"""`make bench`: the AMQP headline workloads against FerryMQ and RabbitMQ, side by side, plus the
generator's ceiling against the sink. Each broker is started once (``ferrymq serve`` on a fresh
data directory, a private RabbitMQ node) and runs every workload; one report folder (JSON + HTML)
per workload under --out, and a markdown table per workload on stdout.

    python -m ferrymq.bench.compare --seconds 10 --out bench-results
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

from ferrymq.bench.api import save
from ferrymq.bench.rabbitmq_node import available
from ferrymq.bench.report import check, compare, machine_info, markdown_table
from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import open_target
from ferrymq.bench.workloads import Workload

WORKLOADS: dict[str, dict[str, Any]] = {
    "confirm-100B": {"size": 100},
    "confirm-4KiB": {"size": 4096},
    "fire-and-forget-100B": {"size": 100, "confirm": False},
    "fixed-1k-per-s-100B": {"size": 100, "kind": "steady", "rate": 1000.0},
}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--out", default="bench-results")
    ap.add_argument("--only", action="append", help="run only these workloads (names above)")
    args = ap.parse_args(argv)
    names = args.only or list(WORKLOADS)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    reports: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    targets = ["ferrymq", "rabbitmq"] if available() else ["ferrymq"]
    for spec in targets:
        with open_target(spec) as target:
            for n in names:
                w = Workload.from_dict({"seconds": args.seconds, **WORKLOADS[n]})
                r = run_workload(target, w)
                r["problems"] = check(r)
                reports[n].append(r)
    with open_target("sink") as sink:
        ceiling = run_workload(sink, Workload(seconds=min(5.0, args.seconds), consumers=0))
    for n in names:
        run = {"date": started, "command": f"python -m ferrymq.bench.compare --seconds {args.seconds}",
               "scenario": {"name": n, "description": f"{n}: 1 producer, 1 consumer, manual acks"},
               "machine": {**machine_info(), "loadavg": list(os.getloadavg())},
               "reports": reports[n], "comparison": compare(reports[n])}
        run["table"] = markdown_table(run["comparison"])
        files = save(run, args.out)
        print(f"## {n}\n\n{run['table']}\n\n({files['html']})\n")
    print(f"sink ceiling (confirmed 100 B publishes): {ceiling['published_per_s']:,.0f} msg/s, producer "
          f"{ceiling['cpu']['producers'][0]:.2f} cores, sink {ceiling['cpu']['broker']:.2f} cores")


if __name__ == "__main__":
    main()
