"""`ferrymq lab`: run a named scenario against brokers, with faults on a timeline, and save a report
(HTML + JSON) that explains what happened. Scenarios, targets and faults: docs/lab.md.

    ferrymq lab --list
    ferrymq lab task-queue                                   # FerryMQ, the scenario's own targets
    ferrymq lab order-processing --target ferrymq --target ferrymq-kafka
    ferrymq lab task-queue --target rabbitmq --duration 30s --fault kill:consumer@10s
    ferrymq lab my-scenario.toml --set workers=8 --out lab-results
    ferrymq lab advise --rate 2000 --job-ms 20 ...           # the workload advisor

A scenario file with a mistake, a target that does not answer or a fault with nothing to act on
gets one line naming it (exit 2) before anything runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import sys
from typing import Any

from ferrymq.lab.disk import DiskError
from ferrymq.lab.faults import parse_fault
from ferrymq.lab.scenario import ScenarioError, builtin_names, load
from ferrymq.lab.targets import TargetError


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferrymq lab", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", help="a built-in scenario's name or a TOML file")
    ap.add_argument("--list", action="store_true", help="describe each built-in scenario in one line")
    ap.add_argument("--target", action="append", default=[], dest="targets", metavar="SPEC",
                    help="ferrymq, ferrymq-kafka, rabbitmq, amqp://..., kafka://...; repeat to compare")
    ap.add_argument("--duration", help="per series: 60s, 90, 2m (default: the scenario's)")
    ap.add_argument("--short", action="store_true", help="the scenario's short form (as the tests run it)")
    ap.add_argument("--fault", action="append", default=None, dest="faults", metavar="SPEC",
                    help="replaces the scenario's faults: kill@20s, stop@40%%+5s, delay@5s+10s,ms=100 ...")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a driver parameter")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="lab-results", help="where the report goes (default %(default)s)")
    ap.add_argument("--no-progress", action="store_true", help="no live table")
    ap.add_argument("--dashboard", default="", metavar="AMQP_URL",
                    help="also show the run on this FerryMQ's dashboard (Lab page); default: the "
                         "lab-started FerryMQ under test")
    ap.add_argument("--json", action="store_true", help="print the run's JSON on stdout")
    return ap


def parse_duration(text: str) -> float:
    t = text.strip()
    try:
        if t.endswith("ms"):
            return float(t[:-2]) / 1000.0
        if t.endswith("m"):
            return float(t[:-1]) * 60.0
        return float(t.removesuffix("s"))
    except ValueError:
        raise ScenarioError(f"--duration {text!r}: expected seconds such as 30, 30s or 2m") from None


def _list() -> int:
    for name in builtin_names():
        s = load(name)
        print(f"{name:22} {s.summary}")
    return 0


def _overrides(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ScenarioError(f"--set {pair!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _prepare(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    scen = load(args.scenario)
    faults = None
    if args.faults is not None:
        try:
            faults = [parse_fault(f) for f in args.faults if f]
        except ValueError as exc:
            raise ScenarioError(str(exc)) from None
    overrides = _overrides(args.set)
    scen.build_params(overrides)
    kwargs = {"duration": parse_duration(args.duration) if args.duration else None, "faults": faults,
              "overrides": overrides, "short": args.short, "seed": args.seed}
    return scen, kwargs


def quiet_clients() -> None:
    """Faults make connection errors routine: the report counts them, the clients need not log them."""
    for name in ("aio_pika", "aiormq", "aiokafka", "kafka"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    quiet_clients()
    if argv and argv[0] == "advise":
        from ferrymq.lab.advise_command import main as advise_main

        return advise_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.list:
            return _list()
        if not args.scenario:
            print("ferrymq lab: name a scenario (ferrymq lab --list shows them)", file=sys.stderr)
            return 2
        scen, kwargs = _prepare(args)
        return _run(scen, kwargs, args, "ferrymq lab " + shlex.join(argv))
    except (ScenarioError, TargetError, DiskError) as exc:
        print(f"ferrymq lab: {exc}", file=sys.stderr)
        return 2


def _run(scen: Any, kwargs: dict[str, Any], args: argparse.Namespace, command: str) -> int:
    import json

    from ferrymq.lab.live import Live
    from ferrymq.lab.runner import run_scenario, save

    duration = kwargs["duration"] or (scen.short_duration if args.short else scen.duration)
    live = Live(enabled=None if not args.no_progress else False, scenario=scen.name, duration=duration,
                dashboard_url=args.dashboard)
    run = asyncio.run(run_scenario(scen, args.targets, live=live, command=command, **kwargs))
    files = save(run, args.out)
    print("\n".join(run["explanation"]), file=sys.stderr)
    print(f"report: {files['html']} (data: {files['json']})", file=sys.stderr)
    if args.json:
        print(json.dumps(run, default=str))
    return 0
