"""`ferrymq lab advise`: describe a workload, get the model (queue or log), its knobs and the reasons,
and optionally the advised set-up as a scenario file to run with `ferrymq lab`.

    ferrymq lab advise --rate 2000 --size 1024 --ordering per-key --fanout 3 --replay --job-ms 20
    ferrymq lab advise --rate 50 --job-ms 5000 --job-ms-p99 30000 --write-scenario advised.toml
    ferrymq lab advise --from workload.toml --json

A workload file holds the fields of ``ferrymq.lab.advise.Workload`` (rate_per_s, size_bytes, ordering,
fanout, replay, retention_s, job_ms_p50, job_ms_p99, consumers, keys, exactly_once, delay_s), at the
top level or under ``[workload]``; flags given on the command line win over the file.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from ferrymq.lab.advise import ORDERINGS, Advice, Workload, advise

PROG = "ferrymq lab advise"
# flag -> Workload field; the order is the order of --help
FIELD_OF = {"--rate": "rate_per_s", "--size": "size_bytes", "--ordering": "ordering", "--fanout": "fanout",
            "--replay": "replay", "--retention": "retention_s", "--job-ms": "job_ms_p50",
            "--job-ms-p99": "job_ms_p99", "--consumers": "consumers", "--keys": "keys",
            "--exactly-once": "exactly_once", "--delay": "delay_s"}
FLAG_OF = {name: flag for flag, name in FIELD_OF.items()}
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class UsageError(ValueError):
    """A mistake on the command line or in the workload file: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def seconds(text: str) -> float:
    """``30``, ``30s``, ``250ms``, ``5m``, ``2h`` or ``7d`` as seconds."""
    t = text.strip().lower()
    unit = next((u for u in sorted(UNITS, key=len, reverse=True) if t.endswith(u)), "")
    try:
        return float(t[: len(t) - len(unit)]) * UNITS.get(unit, 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (30, 30s, 5m, 2h, 7d), got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add = ap.add_argument
    add("--rate", type=float, help="messages per second arriving")
    add("--size", type=int, help="message body bytes")
    add("--ordering", choices=ORDERINGS, help="order needed: none, per-key or total")
    add("--fanout", type=int, help="independent consumers of every message")
    add("--replay", action=argparse.BooleanOptionalAction, help="readers must re-read history")
    add("--retention", type=seconds, help="keep messages this long after reading (0: until consumed)")
    add("--job-ms", type=float, help="processing time per message, median (p50)")
    add("--job-ms-p99", type=float, help="processing time per message, p99 (default: the p50)")
    add("--consumers", type=int, help="consumers you will run (default: advised)")
    add("--keys", type=int, help="distinct ordering keys (default: unknown)")
    add("--exactly-once", action=argparse.BooleanOptionalAction, help="every message processed once")
    add("--delay", type=seconds, help="delay before a message may be delivered")
    add("--from", dest="from_file", metavar="FILE", help="a TOML file describing the workload")
    add("--json", action="store_true", help="print the advice as JSON")
    add("--write-scenario", metavar="PATH", help="save the advised set-up as a lab scenario (TOML)")
    add("--name", default="", help="the scenario's name (default advised-queue / advised-log)")
    add("--run", action="store_true", help="then run the advised set-up as a lab scenario, to check it")
    add("--short", action="store_true", help="with --run: the scenario's short form")
    return ap


def workload_file(path: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"--from {path}: cannot read it: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from {path}: not valid TOML: {exc}") from None
    data = data.get("workload", data)
    if not isinstance(data, dict):
        raise UsageError(f"--from {path}: [workload] must be a table of Workload fields")
    known = {f.name for f in fields(Workload)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise UsageError(f"--from {path}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    return data


def workload_of(args: argparse.Namespace) -> Workload:
    values = workload_file(args.from_file) if args.from_file else {}
    for flag, name in FIELD_OF.items():
        given = getattr(args, flag[2:].replace("-", "_"))
        if given is not None:
            values[name] = given
    try:
        return Workload(**values)
    except ValueError as exc:
        flag = FLAG_OF.get(str(exc).split()[0], "")
        raise UsageError(f"{exc} ({flag})" if flag else str(exc)) from None


def show(advice: Advice, out: Console) -> None:
    out.print(f"[bold]Advice: a {advice.model}[/bold]")
    table = Table(title="knobs", title_justify="left")
    table.add_column("knob")
    table.add_column("value", overflow="fold")
    for knob, value in advice.knobs.items():
        table.add_row(knob, json.dumps(value) if isinstance(value, bool) else str(value))
    out.print(table)
    out.print("[bold]Why[/bold]")
    for reason in advice.reasons:
        out.print(f"  - {reason.text}", markup=False)
    if advice.flags:
        out.print("[bold yellow]Watch out[/bold yellow]")
        for flag in advice.flags:
            out.print(f"  ! {flag.text}", markup=False)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        advice = advise(workload_of(args))
        if args.run and not args.write_scenario:
            Path("lab-results").mkdir(exist_ok=True)
            args.write_scenario = str(Path("lab-results") / f"{args.name or 'advised-' + advice.model}.toml")
        if args.write_scenario:
            _write(Path(args.write_scenario), advice.to_scenario_toml(args.name))
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.json:
        print(json.dumps(advice.to_dict(), indent=2))
    else:
        out = Console(highlight=False, soft_wrap=not sys.stdout.isatty())
        show(advice, out)
        if args.write_scenario:
            path = args.write_scenario
            out.print(f"scenario written to {path} (run it: ferrymq lab {path})", markup=False)
    if args.run:
        from ferrymq.lab.command import main as lab_main

        return lab_main([args.write_scenario, *(["--short"] if args.short else [])])
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise UsageError(f"--write-scenario {path}: cannot write it: {exc.strerror or exc}") from None
