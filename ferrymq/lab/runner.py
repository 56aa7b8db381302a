"""A scenario over its targets, one after the other: check everything first (targets answer,
every target's mode suits the driver, faults have something to act on), run the driver per target,
then build the run's JSON (series summaries, the explanation) and write the report."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from ferrymq.clock import Rng
from ferrymq.lab import explain as explain_mod
from ferrymq.lab import params as params_mod
from ferrymq.lab.context import LabContext
from ferrymq.lab.faults import NETWORK, FaultSpec
from ferrymq.lab.live import Live
from ferrymq.lab.scenario import Scenario, ScenarioError
from ferrymq.lab.summary import summarize
from ferrymq.lab.targets import behind_proxy, check_url, open_target


def interval_for(duration: float) -> float:
    """About 120 points per chart: 0.25 s for short runs, up to 2 s for long ones."""
    return min(2.0, max(0.25, round(duration / 120.0 * 4) / 4))


def preflight(scen: Scenario, targets: list[str], faults: list[FaultSpec]) -> None:
    """Every mistake the run would meet later, found now (one line each, the first one raised)."""
    modes = getattr(scen.module(), "MODES", ("amqp",))
    for spec in targets:
        name, mode, _ = check_url(spec)
        if mode not in modes:
            want = " or ".join("queue mode (amqp)" if m == "amqp" else "log mode (kafka)" for m in modes)
            raise ScenarioError(f"scenario {scen.name} runs in {want}; target {name} is "
                                f"{'queue' if mode == 'amqp' else 'log'} mode")
        for f in faults:
            if f.action in NETWORK and mode == "kafka" and "://" in spec:
                raise ScenarioError(f"fault {f.text}: in log mode, network faults need a FerryMQ the lab "
                                    "starts "
                                    f"(it advertises the proxy to Kafka clients); {name} is given by URL")
            if f.subject == "broker" and f.action in ("kill", "stop") and "://" in spec:
                raise ScenarioError(f"fault {f.text} needs a broker the lab starts (ferrymq, ferrymq-kafka, "
                                    f"rabbitmq); {name} is given by URL")


async def _run_target(scen: Scenario, params: Any, spec: str, duration: float, faults: list[FaultSpec],
                      seed: int, live: Live, short: bool) -> list[dict[str, Any]]:
    network = any(f.action in NETWORK for f in faults)
    async with open_target(spec, faults=faults) as opened, contextlib.AsyncExitStack() as stack:
        target = await stack.enter_async_context(behind_proxy(opened, Rng(seed))) if network else opened
        with tempfile.TemporaryDirectory(prefix="ferrymq-lab-run-") as work:
            ctx = LabContext(target, duration, faults, Rng(seed), Path(work), interval_for(duration),
                             short=short, listeners=[live.watch])
            live.publish_to(target)
            try:
                await scen.module().run(ctx, params)
            finally:
                await ctx.stop_workers()
                for s in ctx.series_list:
                    if s.ended_ns is None:
                        s.end()
            return [summarize(s) for s in ctx.series_list]


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {"cpus": os.cpu_count(), "load_1m": round(load[0], 2), "load_5m": round(load[1], 2),
            "python": platform.python_version(), "platform": platform.platform()}


async def run_scenario(scen: Scenario, targets: list[str], *, duration: float | None = None,
                       faults: list[FaultSpec] | None = None, overrides: dict[str, Any] | None = None,
                       short: bool = False, seed: int = 1, live: Live | None = None,
                       command: str = "") -> dict[str, Any]:
    """The run's JSON (also what the report is drawn from)."""
    params = scen.build_params(overrides)
    faults = scen.faults if faults is None else faults
    duration = duration or (scen.short_duration if short else scen.duration)
    targets = targets or scen.targets
    preflight(scen, targets, faults)
    live = live or Live(enabled=False)
    series: list[dict[str, Any]] = []
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    machine_before = machine()
    with live:
        for spec in targets:
            series += await _run_target(scen, params, spec, duration, faults, seed, live, short)
    run = {"scenario": {"name": scen.name, "summary": scen.summary, "description": scen.description,
                        "driver": scen.driver, "source": scen.source},
           "params": params_mod.as_dict(params), "duration": duration, "short": short, "seed": seed,
           "targets": targets, "faults": [f.text for f in faults], "date": started, "command": command,
           "machine": {**machine_before, "load_1m_after": machine()["load_1m"]}, "series": series}
    run["explanation"] = explain(scen, run)
    return run


def explain(scen: Scenario, run: dict[str, Any]) -> list[str]:
    """The driver's sentences first (what the scenario is about), then the books and recoveries."""
    return list(scen.module().explain(run)) + explain_mod.common(run)


def save(run: dict[str, Any], out_dir: str | Path) -> dict[str, str]:
    from ferrymq.lab.report import render

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{run['scenario']['name']}-{time.strftime('%Y%m%d-%H%M%S')}"
    json_path, html_path = out / f"{stem}.json", out / f"{stem}.html"
    json_path.write_text(json.dumps(run, indent=1, default=str))
    html_path.write_text(render(run))
    return {"json": str(json_path), "html": str(html_path)}


def run_sync(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return asyncio.run(run_scenario(*args, **kwargs))
