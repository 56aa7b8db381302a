"""`ferrymq bench` (also `python -m ferrymq.bench`): the command line over ``api.bench``.

    ferrymq bench --target ferrymq --target rabbitmq --scenario scenarios/confirm-100b.toml
    ferrymq bench --target amqp://guest:guest@127.0.0.1:5672/%2F --workload steady --rate 1000
    ferrymq bench --target sink --consumers 0 --seconds 5          # the generator's own ceiling
    ferrymq bench --scenario order-processing --target ferrymq      # a built-in scenario
    ferrymq bench --list-scenarios
    ferrymq bench sink --port 5699 [--delay-ms 20]                  # run the null server alone
    ferrymq bench jobs [--jobs 20000] [--broker both] [--libs ...]  # job libraries (ferrymq.bench.jobs)
    ferrymq bench sqs [--target ferrymq] [--compare moto] [--workload ...]  # SQS (ferrymq.bench.sqs)

Targets: an amqp:// URL (FerryMQ, RabbitMQ or any AMQP 0-9-1 broker), ``sink`` (null server),
``ferrymq`` (starts `ferrymq serve` on a fresh data directory), ``rabbitmq`` (starts a private
node), optionally named: ``ours=amqp://...``. Given twice, the targets run one after the other
with the same workload and the report puts them side by side. Reports: JSON and HTML under
--out (default bench-results/); a live table on stderr; the run's JSON on stdout with --json.
Workload flags override the scenario's values.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import fields
from typing import Any

from ferrymq.bench.workloads import KINDS, Workload

# flag -> Workload field, for flags whose names differ from the field
FLAG_FIELDS = {"workload": "kind"}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferrymq bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", "--url", action="append", default=[], dest="targets", metavar="SPEC",
                    help="amqp://..., sink, ferrymq, rabbitmq or name=URL; repeat to compare")
    ap.add_argument("--scenario", help="a built-in scenario's name or a TOML file")
    ap.add_argument("--list-scenarios", action="store_true", help="list the built-in scenarios")
    ap.add_argument("--workload", choices=KINDS, help="max, steady, bursty, fanout, task or stream")
    d = Workload()
    for f in fields(Workload):
        if f.name in ("kind", "confirm", "nodelay"):
            continue
        flag, default = "--" + f.name.replace("_", "-"), getattr(d, f.name)
        if isinstance(default, bool):
            ap.add_argument(flag, action="store_true", default=None, help=f"(default {default})")
        else:
            ap.add_argument(flag, type=type(default), default=None, help=f"(default {default})")
    ap.add_argument("--no-confirm", action="store_true", help="fire-and-forget: no publisher confirms")
    ap.add_argument("--no-nodelay", action="store_true", help="leave Nagle's algorithm on (experiments)")
    ap.add_argument("--broker-pid", type=int, action="append", default=[],
                    help="the broker's pid for CPU accounting, per target in order (found for local URLs)")
    ap.add_argument("--sink-delay-ms", type=float, default=0.0,
                    help="the sink hands each message to its consumer after this delay")
    ap.add_argument("--fsync", default="always", help="fsync policy of a `ferrymq` target (default always)")
    ap.add_argument("--out", default="bench-results", help="where reports go (default %(default)s)")
    ap.add_argument("--no-save", action="store_true", help="write no report files")
    ap.add_argument("--json", action="store_true", help="print the run's JSON on stdout")
    ap.add_argument("--indent", type=int, default=1, help="JSON indent for --json (0 = one line)")
    ap.add_argument("--no-progress", action="store_true", help="no live table")
    return ap


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Workload):
        if f.name in ("kind", "confirm", "nodelay"):
            continue
        v = getattr(args, f.name)
        if v is not None:
            out[f.name] = v
    if args.workload:
        out["kind"] = args.workload
    if args.no_confirm:
        out["confirm"] = False
    if args.no_nodelay:
        out["nodelay"] = False
    return out


def _list_scenarios() -> int:
    from ferrymq.bench import scenarios

    for name in scenarios.builtin_names():
        s = scenarios.load(name)
        print(f"{name:18} {s.workload.get('kind', 'max'):7} {' '.join(s.description.split())}")
    return 0


def _report(run: dict[str, Any], args: argparse.Namespace) -> int:
    """The table and any problems on stderr, the JSON on stdout when asked; the exit status."""
    print(run["table"], file=sys.stderr)
    for r in run["reports"]:
        for problem in r["problems"]:
            print(f"{r['target']['name']}: {problem}", file=sys.stderr)
    if "files" in run:
        print(f"reports: {run['files']['json']} {run['files']['html']}", file=sys.stderr)
    if args.json:
        print(json.dumps(run, indent=args.indent or None, default=str))
    return 1 if any(r["problems"] for r in run["reports"]) else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "markdown":
        from ferrymq.bench.markdown import main as markdown_main

        return markdown_main(argv[1:])
    if argv and argv[0] in ("jobs", "sqs"):  # ferrymq.bench.<name>.command
        import importlib

        return int(importlib.import_module(f"ferrymq.bench.{argv[0]}.command").main(argv[1:]))
    if argv and argv[0] == "sink":
        from ferrymq.bench.sink import main as sink_main

        sink_main(argv[1:])
        return 0
    args = build_parser().parse_args(argv)
    from ferrymq.bench import scenarios

    if args.list_scenarios:
        return _list_scenarios()
    scen = scenarios.load(args.scenario) if args.scenario else None
    try:
        workload = (scen.build(overrides(args)) if scen else Workload.from_dict(overrides(args)))
    except ValueError as exc:
        print(f"ferrymq bench: {exc}", file=sys.stderr)
        return 2
    targets = args.targets or (scen.targets if scen and scen.targets else [])
    if not targets:
        print("ferrymq bench: give at least one --target (amqp://..., sink, ferrymq, rabbitmq)",
              file=sys.stderr)
        return 2
    from ferrymq.bench.api import bench

    run = bench(targets, workload, name=scen.name if scen else workload.kind,
                description=scen.description if scen else "", out_dir=None if args.no_save else args.out,
                progress=False if args.no_progress else None, broker_pids=args.broker_pid,
                sink_delay_ms=args.sink_delay_ms, fsync=args.fsync,
                command="ferrymq bench " + shlex.join(argv))
    return _report(run, args)


if __name__ == "__main__":
    sys.exit(main())
