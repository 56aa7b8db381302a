"""Running a lab scenario's short form from a test: the same runner the command uses, the report
written (so its rendering is exercised too), and the run's JSON returned for the invariants."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ferrymq.lab.faults import parse_fault
from ferrymq.lab.runner import run_scenario, save
from ferrymq.lab.scenario import load


def run_short(name: str, targets: list[str], out: Path, faults: list[str] | None = None,
              duration: float | None = None, **overrides: Any) -> dict[str, Any]:
    scen = load(name)
    plan = None if faults is None else [parse_fault(f) for f in faults]
    run = asyncio.run(run_scenario(scen, targets, short=True, faults=plan, overrides=overrides,
                                   duration=duration))
    files = save(run, out)
    assert Path(files["html"]).read_text().count("<svg") >= 3
    return run


def by_variant(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["variant"]: s for s in run["series"]}
