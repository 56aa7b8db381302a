"""``python -m ferrymq.fuzz --target NAME --inputs N --seconds S [--seed K]``: soak one target (or
``all``, one after another); ``--list`` prints the target names. Exits 1 when anything was found."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ferrymq.fuzz.runner import run
from ferrymq.fuzz.targets import TARGETS

DEFAULT_SAVE_DIR = Path("tests/fuzz/regressions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferrymq.fuzz", description=__doc__)
    parser.add_argument("--target", default="all", help=f"one of {', '.join(TARGETS)} or all")
    parser.add_argument("--inputs", type=int, default=10_000_000, help="inputs per target")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound per target")
    parser.add_argument("--seed", type=int, default=None, help="replay a run (printed by every run)")
    parser.add_argument("--save-dir", type=Path, default=DEFAULT_SAVE_DIR,
                        help="findings go to SAVE_DIR/<target>/")
    parser.add_argument("--list", action="store_true", help="print the target names and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(TARGETS))
        return 0
    if args.target != "all" and args.target not in TARGETS:
        parser.error(f"unknown target {args.target!r}; --list shows them")
    names = list(TARGETS) if args.target == "all" else [args.target]
    found = 0
    for name in names:
        report = run(TARGETS[name], args.inputs, args.seconds, args.seed, args.save_dir)
        print(report.line(), flush=True)
        found += len(report.findings)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
