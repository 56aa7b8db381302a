"""``python -m ferrymq.fuzz --target NAME --inputs N --seconds S [--seed K]``: soak one target (or
``all``, one after another), each in a child process so a native crash is caught and its input
kept; ``--replay FILE`` runs one saved input; ``--list`` prints the names. Exits 1 on any finding."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from ferrymq.fuzz.runner import crashed_input, run, save
from ferrymq.fuzz.targets import TARGETS

DEFAULT_SAVE_DIR = Path("tests/fuzz/regressions")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ferrymq.fuzz", description=__doc__)
    parser.add_argument("--target", default="all", help=f"one of {', '.join(TARGETS)} or all")
    parser.add_argument("--inputs", type=int, default=10_000_000, help="inputs per target")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound per target")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (printed by every run)")
    parser.add_argument("--save-dir", type=Path, default=DEFAULT_SAVE_DIR,
                        help="findings go to SAVE_DIR/<target>/")
    parser.add_argument("--replay", type=Path, help="run the one input in this file through --target")
    parser.add_argument("--list", action="store_true", help="print the target names and exit")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.target != "all" and args.target not in TARGETS:
        parser.error(f"unknown target {args.target!r}; --list shows them")
    if args.replay:
        TARGETS[args.target].one_input(args.replay.read_bytes())  # an escape is the traceback
        return 0
    if args.child:
        report = run(TARGETS[args.target], args.inputs, args.seconds, args.seed, args.save_dir)
        print(report.line(), flush=True)
        return 1 if report.findings else 0
    names = list(TARGETS) if args.target == "all" else [args.target]
    return max(_soak_in_child(name, args) for name in names)


def _soak_in_child(name: str, args: argparse.Namespace) -> int:
    """One target in its own process: a native abort or an out-of-memory kill becomes a finding."""
    command = [sys.executable, "-m", "ferrymq.fuzz", "--child", "--target", name, "--inputs",
               str(args.inputs), "--seconds", str(args.seconds), "--save-dir", str(args.save_dir)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    code = subprocess.call(command)
    if code >= 0:
        return code
    data = crashed_input(args.save_dir / name)
    where = save(args.save_dir / name, f"Crash@signal:{-code}", data) if data is not None else "?"
    print(f"FINDING {name} the process died of signal {-code}; its input: {where}", flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
