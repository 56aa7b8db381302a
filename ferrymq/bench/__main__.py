"""AMQP 0-9-1 load generator (raw sockets, one OS process per producer and per consumer).

    python -m ferrymq.bench --url amqp://guest:guest@127.0.0.1:5672/%2F --size 100 \\
        --confirm-window 500 --prefetch 500 --seconds 10 --producers 1 --consumers 1 \\
        [--persistent] [--no-confirm] [--multi-ack N] [--rate R] [--broker-pid PID]

    python -m ferrymq.bench sink --port 5699     # a null broker: the generator's own ceiling

Prints one JSON report on stdout: msgs/s published, confirmed and consumed over the measured
window, end-to-end latency percentiles (ms), CPU fraction (CPU s / wall s) of every generator
process and of the broker process (--broker-pid), totals including the drain, and the load.
"""

from __future__ import annotations

import argparse
import json
import sys

from ferrymq.bench.run import BenchOptions, run


def build_parser() -> argparse.ArgumentParser:
    d = BenchOptions()
    ap = argparse.ArgumentParser(prog="python -m ferrymq.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default=d.url, help="broker URL (default %(default)s)")
    ap.add_argument("--queue", default=d.queue,
                    help="queue name (default: a fresh one per run, deleted afterwards)")
    ap.add_argument("--keep-queue", action="store_true", help="do not delete the queue afterwards")
    ap.add_argument("--size", type=int, default=d.size, help="body bytes, >= 8 (default %(default)s)")
    ap.add_argument("--confirm-window", type=int, default=d.confirm_window,
                    help="unconfirmed publishes allowed per producer (default %(default)s)")
    ap.add_argument("--no-confirm", action="store_true", help="fire-and-forget: no publisher confirms")
    ap.add_argument("--prefetch", type=int, default=d.prefetch,
                    help="basic.qos prefetch (default %(default)s)")
    ap.add_argument("--multi-ack", type=int, default=d.multi_ack, metavar="N",
                    help="ack with multiple=True every N deliveries (default: ack each)")
    ap.add_argument("--seconds", type=float, default=d.seconds, help="measured window (default %(default)s)")
    ap.add_argument("--warmup", type=float, default=d.warmup,
                    help="seconds of traffic before the window, not counted (default %(default)s)")
    ap.add_argument("--producers", type=int, default=d.producers)
    ap.add_argument("--consumers", type=int, default=d.consumers,
                    help="0 for publishing only (e.g. against the sink)")
    ap.add_argument("--persistent", action="store_true",
                    help="durable queue and delivery_mode 2")
    ap.add_argument("--rate", type=float, default=d.rate, metavar="R",
                    help="fixed total rate in msgs/s; latency from the intended send time")
    ap.add_argument("--batch", type=int, default=d.batch,
                    help="publishes per write, at most (default %(default)s)")
    ap.add_argument("--drain-seconds", type=float, default=d.drain_seconds,
                    help="after the window, wait at most this long for confirms/deliveries")
    ap.add_argument("--no-nodelay", action="store_true",
                    help="leave Nagle's algorithm on (TCP_NODELAY off): for experiments")
    ap.add_argument("--broker-pid", type=int, default=0, help="report this process's CPU fraction")
    ap.add_argument("--indent", type=int, default=2, help="JSON indent (0 = one line)")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "sink":
        from ferrymq.bench.sink import main as sink_main

        sys.argv = ["python -m ferrymq.bench sink", *argv[1:]]
        sink_main()
        return 0
    args = build_parser().parse_args(argv)
    opts = BenchOptions(
        url=args.url, queue=args.queue, size=args.size, confirm_window=args.confirm_window,
        confirm=not args.no_confirm, prefetch=args.prefetch, multi_ack=args.multi_ack,
        seconds=args.seconds, warmup=args.warmup, producers=args.producers,
        consumers=args.consumers, persistent=args.persistent, rate=args.rate, batch=args.batch,
        drain_seconds=args.drain_seconds, broker_pid=args.broker_pid, keep_queue=args.keep_queue,
        nodelay=not args.no_nodelay)
    report = run(opts)
    print(json.dumps(report, indent=args.indent or None))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
