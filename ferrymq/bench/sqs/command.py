"""`ferrymq bench sqs`: SQS targets side by side in one run, over the JSON 1.0 protocol.

    ferrymq bench sqs                                          # FerryMQ, pipeline, 10 s, 16 loops
    ferrymq bench sqs --target ferrymq --compare moto          # = make bench-sqs (both workloads there)
    ferrymq bench sqs --workload idle-pollers --concurrency 1000 --seconds 30 --compare moto
    ferrymq bench sqs --target sink --processes 2              # the generator's own ceiling
    ferrymq bench sqs --target http://127.0.0.1:4566 --routing-auth    # a moto you started

Workloads: pipeline (C loops of SendMessageBatch(10) -> ReceiveMessage(10) -> DeleteMessageBatch,
then a drain; msg/s deleted in the window, per-call p50/p99) and idle-pollers (C connections
long-polling an empty queue, WaitTimeSeconds=20: the broker's CPU). Targets: ferrymq (a private
`ferrymq serve`), moto (moto's server mode), sink (null SQS server), http://host:port, name=URL.
The table goes to stderr (and --markdown FILE), the run's JSON under --out; the exit status is 1
when any call failed or any count does not balance.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ferrymq.bench.sqs.run import WORKLOADS, Plan, run, save
from ferrymq.bench.sqs.transport import CLIENTS

# workload -> (concurrency, seconds, warm-up seconds: 1,000 connections take moto several seconds to accept)
# pipeline: 16 loops was FerryMQ's best here (8, 32 and 64 slower; moto's best is 1)
DEFAULTS = {"pipeline": (16, 10.0, 3.0), "idle-pollers": (1000, 30.0, 10.0)}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ferrymq bench sqs", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", action="append", default=[], dest="targets", metavar="SPEC",
                    help="ferrymq, moto, sink, http://host:port or name=URL; repeat (default ferrymq)")
    ap.add_argument("--compare", action="append", default=[], metavar="SPEC",
                    help="a target run after the --target ones, same workload")
    ap.add_argument("--workload", choices=WORKLOADS, default="pipeline")
    ap.add_argument("--seconds", type=float, help="measured window (pipeline 10, idle-pollers 30)")
    ap.add_argument("--concurrency", type=int,
                    help="loops / polling connections (pipeline 16, idle-pollers 1000)")
    ap.add_argument("--processes", type=int, default=1, help="generator processes (0: in this process)")
    ap.add_argument("--client", choices=CLIENTS, default="raw", help="generator transport (default raw)")
    ap.add_argument("--body-bytes", type=int, default=100, help="message body size (default 100)")
    ap.add_argument("--wait", type=int, default=1, help="pipeline ReceiveMessage WaitTimeSeconds (default 1)")
    ap.add_argument("--warmup", type=float, help="seconds before the window (pipeline 3, idle-pollers 10)")
    ap.add_argument("--verify", action="store_true", help="check every message was received exactly once")
    ap.add_argument("--fsync", default="always", help="fsync policy of a started ferrymq (default always)")
    ap.add_argument("--routing-auth", action="store_true",
                    help="send moto's (unsigned) routing Authorization header to URL targets")
    ap.add_argument("--out", default="bench-results", help="where the run's JSON goes")
    ap.add_argument("--no-save", action="store_true", help="write no JSON file")
    ap.add_argument("--markdown", help="also write the table to this file")
    ap.add_argument("--json", action="store_true", help="print the run's JSON on stdout")
    return ap


def plan_of(args: argparse.Namespace) -> Plan:
    concurrency, seconds, warmup = DEFAULTS[args.workload]
    plan = Plan(workload=args.workload, seconds=args.seconds or seconds,
                concurrency=args.concurrency or concurrency, processes=args.processes, client=args.client,
                body_bytes=args.body_bytes, wait_s=args.wait, verify=args.verify, fsync=args.fsync,
                warmup_s=warmup if args.warmup is None else args.warmup, routing_auth=args.routing_auth)
    if plan.seconds <= 0 or plan.concurrency < 1 or not 0 <= plan.processes <= 64 or plan.body_bytes < 24:
        raise ValueError("--seconds, --concurrency positive; --processes 0..64; --body-bytes >= 24")
    if not 0 <= plan.wait_s <= 20 or plan.warmup_s < 0:
        raise ValueError("--wait is 0..20 (SQS's WaitTimeSeconds), --warmup >= 0")
    return plan


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        plan = plan_of(args)
    except ValueError as exc:
        print(f"ferrymq bench sqs: {exc}", file=sys.stderr)
        return 2
    specs = (args.targets or ["ferrymq"]) + args.compare
    result = run(specs, plan, command="ferrymq bench sqs " + shlex.join(argv))
    print(result["table"], file=sys.stderr)
    if not args.no_save:
        print(f"saved: {save(result, Path(args.out))}", file=sys.stderr)
    if args.markdown:
        Path(args.markdown).write_text(result["table"] + "\n")
    if args.json:
        print(json.dumps(result, indent=1, default=str))
    return 1 if any(r.get("problems") for r in result["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
