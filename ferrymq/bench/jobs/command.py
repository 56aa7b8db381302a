"""`ferrymq bench jobs`: job libraries side by side on the same brokers, with real workers.

    ferrymq bench jobs                                   # 20,000 jobs, both brokers, all libraries
    ferrymq bench jobs --jobs 20000 --broker both --libs ferrymq,dramatiq,celery
    ferrymq bench jobs --broker ferrymq --libs dramatiq --workloads drain --jobs 200
    ferrymq bench jobs --workloads backlog --backlog 1000000 --backlog-libs ferrymq

Workloads: drain (enqueue N no-op jobs, then start the workers: enqueue and drain jobs/s),
latency (workers running, --rate jobs/s for --seconds: enqueue -> start p50/p99), backlog
(--backlog jobs waiting: the broker's RSS). The table goes to stderr (and --markdown FILE), the
run's JSON under --out.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ferrymq.bench.jobs.libs import LIBS
from ferrymq.bench.jobs.run import BROKERS, WORKLOADS, Plan, run, save
from ferrymq.bench.jobs.table import profile_text


def _names(text: str, allowed: tuple[str, ...] | list[str], what: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in names if x not in allowed]
    if bad or not names:
        raise argparse.ArgumentTypeError(f"{what}: choose from {', '.join(allowed)} (got {text!r})")
    return names


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferrymq bench jobs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=20_000, help="drain: jobs enqueued (default %(default)s)")
    ap.add_argument("--broker", default="both", choices=(*BROKERS, "both"))
    ap.add_argument("--libs", default="ferrymq,dramatiq,celery",
                    type=lambda s: _names(s, list(LIBS), "--libs"))
    ap.add_argument("--workloads", default="drain,latency",
                    type=lambda s: _names(s, WORKLOADS, "--workloads"))
    ap.add_argument("--rate", type=float, default=1000.0, help="latency: jobs/s (default %(default)s)")
    ap.add_argument("--seconds", type=float, default=20.0, help="latency: seconds paced (default 20)")
    ap.add_argument("--backlog", type=int, default=1_000_000, help="backlog: jobs waiting")
    ap.add_argument("--backlog-libs", default="ferrymq",
                    type=lambda s: _names(s, list(LIBS), "--backlog-libs"))
    ap.add_argument("--ferrymq-concurrency", type=int, default=0, help="ferrymq worker --concurrency")
    ap.add_argument("--fsync", default="always", help="fsync policy of the ferrymq broker (default always)")
    ap.add_argument("--profile", action="store_true",
                    help="drain: workers sample their own stacks; top frames in the JSON and on stderr")
    ap.add_argument("--out", default="bench-results", help="where the run's JSON goes")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--json", action="store_true", help="print the run's JSON on stdout")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.jobs < 1 or args.rate <= 0 or args.seconds <= 0 or args.backlog < 1:
        print("ferrymq bench jobs: --jobs, --rate, --seconds and --backlog must be positive", file=sys.stderr)
        return 2
    plan = Plan(jobs=args.jobs, brokers=BROKERS if args.broker == "both" else (args.broker,),
                libs=args.libs, workloads=args.workloads, rate=args.rate, seconds=args.seconds,
                backlog=args.backlog, backlog_libs=args.backlog_libs, fsync=args.fsync,
                concurrency={"ferrymq": args.ferrymq_concurrency}, profile=args.profile)
    result = run(plan, command="ferrymq bench jobs " + shlex.join(argv))
    print(result["table"], file=sys.stderr)
    for row in (r for r in result["rows"] if "profile" in r):
        print(profile_text(row), file=sys.stderr)
    print(f"saved: {save(result, Path(args.out))}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(result["table"] + "\n")
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    return 1 if any("error" in r for r in result["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
