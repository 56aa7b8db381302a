"""The Python API: run one workload against one or more targets, one after the other with the
same generator, and save the reports.

    from ferrymq.bench.api import bench
    from ferrymq.bench.workloads import Workload
    run = bench(["ferrymq", "rabbitmq"], Workload(kind="max", size=100, seconds=5), out_dir="bench-results")
    run["comparison"]   # one row per target, with the ratio to the first

Targets run in turn, never at once: on a small machine two brokers at full load would measure
each other.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ferrymq.bench.html_report import render
from ferrymq.bench.progress import Progress
from ferrymq.bench.report import check, compare, machine_info, markdown_table
from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import open_target
from ferrymq.bench.workloads import Workload


def bench(targets: list[str], workload: Workload, *, name: str = "", description: str = "",
          out_dir: str | os.PathLike[str] | None = None, progress: bool | None = None,
          broker_pids: list[int] | None = None, sink_delay_ms: float = 0.0, fsync: str = "always",
          command: str = "") -> dict[str, Any]:
    """Run ``workload`` against each target; returns the run (reports, comparison, paths)."""
    if not targets:
        raise ValueError("at least one target: an amqp:// URL, sink, ferrymq or rabbitmq")
    pids = list(broker_pids or [])
    reports = []
    started = datetime.now(UTC)
    total = workload.warmup + workload.seconds
    with Progress(total, progress) as display:
        for i, spec in enumerate(targets):
            with open_target(spec, broker_pid=pids[i] if i < len(pids) else 0, sink_delay_ms=sink_delay_ms,
                             fsync=fsync) as target:
                if any(r["target"]["name"] == target.name for r in reports):
                    target.name = f"{target.name}#{i + 1}"
                display.start_target(target.name)
                report = run_workload(target, workload, on_sample=display.on_sample)
                report["problems"] = check(report)
                display.finish_target(target.name, report)
                reports.append(report)
    run: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "command": command,
        "scenario": {"name": name or workload.kind, "description": description},
        "machine": {**machine_info(), "loadavg_before_first": reports[0]["machine"]["loadavg_before"]},
        "reports": reports,
        "comparison": compare(reports),
    }
    run["table"] = markdown_table(run["comparison"])
    if out_dir is not None:
        run["files"] = save(run, out_dir)
    return run


def save(run: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """report.json and report.html in ``out_dir/<date>-<scenario>/``."""
    stamp = run["date"].replace(":", "").replace("-", "").replace("+0000", "")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", run["scenario"]["name"])[:60]
    folder = Path(out_dir) / f"{stamp}-{slug}"
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "report.json", folder / "report.html"
    json_path.write_text(json.dumps(run, indent=1, default=str))
    html_path.write_text(render(run))
    return {"json": str(json_path), "html": str(html_path)}
