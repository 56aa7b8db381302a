"""One `ferrymq bench sqs` run: each target in turn (started here when named), a fresh queue,
the workload in the generator's processes, the broker's CPU over the same window, the queue's
depth afterwards; `uptime` before and after each target; then the side-by-side table."""

from __future__ import annotations

import json
import os
import platform
import secrets
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferrymq.bench.procstat import machine_busy_seconds, proc_cpu_seconds
from ferrymq.bench.sqs import calls, workers
from ferrymq.bench.sqs.summary import problems, summarize
from ferrymq.bench.sqs.targets import Endpoint, open_endpoint

WORKLOADS = ("pipeline", "idle-pollers")
VISIBILITY_S = "120"  # long enough that no message of a run is redelivered by timeout


@dataclass(frozen=True)
class Plan:
    workload: str = "pipeline"
    seconds: float = 10.0
    concurrency: int = 16
    processes: int = 1
    client: str = "raw"
    body_bytes: int = 100
    wait_s: int = 1
    warmup_s: float = 3.0
    verify: bool = False
    fsync: str = "always"
    routing_auth: bool = False


class EdgeSampler(threading.Thread):
    """Broker CPU and machine busy seconds at the window's edges, from a thread of the parent."""

    def __init__(self, pid: int, start_at: float, end_at: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.edges = pid, (start_at, end_at)
        self.samples: list[tuple[float, float]] = []

    def run(self) -> None:
        for edge in self.edges:
            time.sleep(max(0.0, edge - time.monotonic()))
            self.samples.append((proc_cpu_seconds(self.pid) if self.pid else 0.0, machine_busy_seconds()))

    def cores(self, seconds: float) -> tuple[float | None, float]:
        self.join()
        (b0, m0), (b1, m1) = self.samples
        return (round((b1 - b0) / seconds, 3) if self.pid else None), round((m1 - m0) / seconds, 3)


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except OSError:
        return "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(ep: Endpoint, plan: Plan) -> dict[str, Any]:
    name = f"bench-{plan.workload}-{secrets.token_hex(3)}"
    created = ep.call("CreateQueue", calls.create_queue(name, {"VisibilityTimeout": VISIBILITY_S}))
    url = calls.queue_url_of(created)
    start_at = time.monotonic() + plan.warmup_s
    job = workers.Job(plan.workload, ep.host, ep.port, ep.auth, url, plan.concurrency, start_at, plan.seconds,
                      plan.client, plan.body_bytes, plan.wait_s, plan.verify)
    sampler = EdgeSampler(ep.pid, start_at, start_at + plan.seconds)
    sampler.start()
    results = workers.run_all(job, plan.processes)
    s = summarize(results, plan.seconds, plan.workload)
    s["broker_cores"], s["machine_cores"] = sampler.cores(plan.seconds)
    deleted, cores = s["per_s"]["deleted"], s["broker_cores"]
    # the figure a busy machine moves least: broker CPU per message, whatever share of a core it got
    s["broker_us_per_msg"] = round(1e6 * cores / deleted, 1) if cores and deleted else None
    s["left"] = calls.depth_of(ep.call("GetQueueAttributes", calls.depth_query(url)))
    ep.call("DeleteQueue", calls.queue_only(url))
    s["problems"] = problems(s, plan.workload)
    return s


def run_target(spec: str, plan: Plan) -> dict[str, Any]:
    row: dict[str, Any] = {"spec": spec, "uptime_before": uptime()}
    try:
        with open_endpoint(spec, plan.fsync, plan.routing_auth) as ep:
            row["target"] = ep.describe()
            row.update(measure(ep, plan))
    except Exception as exc:  # one target failing must not hide the others' figures
        row["problems"] = [f"{type(exc).__name__}: {exc}"]
    row["uptime_after"] = uptime()
    return row


def run(specs: list[str], plan: Plan, command: str = "") -> dict[str, Any]:
    from ferrymq.bench.sqs.table import table

    rows = [run_target(spec, plan) for spec in specs]
    return {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                        "platform": platform.platform()},
            "plan": vars(plan), "rows": rows, "table": table(rows, plan.workload)}


def save(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"sqs-{result['plan']['workload']}-{result['date'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    return path
