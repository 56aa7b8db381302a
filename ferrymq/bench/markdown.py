"""BENCHMARKS.md sections generated from saved runs: every figure with the command that produced
it, the machine, the date, the load and the side-by-side table with ratios.

    ferrymq bench markdown bench-results/<run>/report.json [...] >> BENCHMARKS.md
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def section(run: dict[str, Any]) -> str:
    m = run["machine"]
    load = ", ".join(f"{x:.2f}" for x in m.get("loadavg_before_first", []))
    scenario = run["scenario"]
    lines = [
        f"### {scenario['name']} ({run['date']})",
        "",
        " ".join(scenario.get("description", "").split()) or "",
        "",
        "```sh",
        run.get("command") or "(run through the Python API: ferrymq.bench.api.bench)",
        "```",
        "",
        f"Machine: {m.get('nproc')} cores ({m.get('cpu', '?')}), Python {m.get('python', '?')}, "
        f"{m.get('platform', '?')}; load average before the first target: {load or '?'}.",
        "",
        run["table"],
    ]
    problems = [p for r in run["reports"] for p in r.get("problems", [])]
    if problems:
        lines += ["", "Inconsistencies the report found: " + "; ".join(problems)]
    return "\n".join(line for i, line in enumerate(lines) if line or lines[i - 1]) + "\n"


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: ferrymq bench markdown <report.json or run folder> ...")
        return 2
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            path = path / "report.json"
        print(section(json.loads(path.read_text())))
    return 0
