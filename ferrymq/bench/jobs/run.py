"""One `ferrymq bench jobs` run: for each broker (started here, fresh), each library's workloads
one after the other, so every library meets the same broker in the same run; then a table."""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrymq.bench.jobs import workloads as wl
from ferrymq.bench.jobs.libs import LIBS, versions
from ferrymq.bench.targets import Target, open_target

BROKERS = ("ferrymq", "rabbitmq")
WORKLOADS = ("drain", "latency", "backlog")


@dataclass
class Plan:
    jobs: int = 20_000
    brokers: tuple[str, ...] = BROKERS
    libs: tuple[str, ...] = ("ferrymq", "dramatiq", "celery")
    workloads: tuple[str, ...] = ("drain", "latency")
    rate: float = 1000.0
    seconds: float = 20.0
    backlog: int = 1_000_000
    backlog_libs: tuple[str, ...] = ("ferrymq",)
    concurrency: dict[str, int] = field(default_factory=dict)  # lib -> threads/processes per worker
    fsync: str = "always"
    profile: bool = False  # drain: sample the workers' stacks (see sampler)


def _note(msg: str) -> None:
    print(f"[bench jobs {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _one(plan: Plan, target: Target, lib_name: str, workload: str, work: Path) -> dict[str, Any]:
    lib, conc = LIBS[lib_name], plan.concurrency.get(lib_name, 0)
    if workload == "drain":
        return wl.drain(lib, target.url, plan.jobs, work, target.broker_pid, conc, profile=plan.profile)
    if workload == "latency":
        return wl.latency(lib, target.url, work, plan.rate, plan.seconds, conc)
    return wl.backlog(lib, target.url, plan.backlog, target.broker_pid)


def _wanted(plan: Plan, lib_name: str, workload: str) -> bool:
    return workload != "backlog" or lib_name in plan.backlog_libs


def run_broker(plan: Plan, broker: str, scratch: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with open_target(broker, fsync=plan.fsync) as target:
        for lib_name in plan.libs:
            lib = LIBS[lib_name]
            for workload in (w for w in plan.workloads if _wanted(plan, lib_name, w)):
                row = {"broker": broker, "lib": lib_name, "lib_describe": lib.describe, "workload": workload}
                if not lib.available():
                    rows.append({**row, "error": f"{lib_name} is not importable on this branch"})
                    continue
                _note(f"{broker} / {lib_name} / {workload}")
                work = Path(tempfile.mkdtemp(prefix=f"{broker}-{lib_name}-{workload}-", dir=scratch))
                try:
                    rows.append({**row, **_one(plan, target, lib_name, workload, work)})
                except Exception as exc:
                    _note(f"{broker} / {lib_name} / {workload} failed: {exc}")
                    rows.append({**row, "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc()})
    return rows


def run(plan: Plan, command: str = "") -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ferrymq-bench-jobs-") as scratch:
        rows = [r for b in plan.brokers for r in run_broker(plan, b, Path(scratch))]
    from ferrymq.bench.jobs.table import table

    return {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"python": platform.python_version(), "platform": platform.platform()},
            "versions": versions(), "plan": {k: v for k, v in vars(plan).items()}, "rows": rows,
            "table": table(rows)}


def save(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"jobs-{result['date'].replace(':', '')}.json"
    path.write_text(json.dumps(result, indent=1, default=str))
    return path
