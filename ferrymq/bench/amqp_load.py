"""Deprecated entry point, kept so ``scripts/bench_persistent.py`` runs unchanged: ``Options`` and
``run`` of the old one-producer/one-consumer generator, now a thin adapter over the one load
generator (``ferrymq.bench.run``). New code: ``ferrymq.bench.api.bench`` or ``ferrymq bench``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Workload


@dataclass
class Options:
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    queue: str = "ferrymq-bench"  # ignored: every run declares fresh queues
    size: int = 100
    seconds: float = 10.0
    window: int = 500  # unconfirmed publishes allowed; 0 = fire-and-forget
    prefetch: int = 500
    persistent: bool = False
    multi_ack: bool = False
    rate: float = 0.0
    batch: int = 50
    broker_pid: int = 0


def run(opts: Options) -> dict[str, Any]:
    """One run, reported in the old shape (producer / consumer / broker_cpu)."""
    w = Workload(kind="steady" if opts.rate else "max", size=opts.size, rate=opts.rate, seconds=opts.seconds,
                 confirm=opts.window > 0, confirm_window=opts.window or 500, prefetch=opts.prefetch,
                 persistent=opts.persistent, multi_ack=50 if opts.multi_ack else 0, batch=opts.batch,
                 warmup=0.5)
    r = run_workload(Target("amqp", opts.url, "amqp", opts.broker_pid), w)
    if r["errors"]:
        raise RuntimeError("; ".join(r["errors"]))
    lat = r["latency_ms"] or {}
    p, c = r["producers"][0], r["consumers"][0]
    return {
        "options": asdict(opts),
        "published_per_s": r["published_per_s"],
        "confirmed_per_s": r["confirmed_per_s"] or 0.0,
        "consumed_per_s": r["consumed_per_s"],
        "producer": {"sent": p["published"], "confirmed": p["confirmed"], "nacked": p["nacked"],
                     "seconds": p["window_seconds"], "cpu": p["cpu_fraction"]},
        "consumer": {"received": c["consumed"], "seconds": c["window_seconds"], "cpu": c["cpu_fraction"],
                     "latency_ns": {k: v * 1e6 for k, v in lat.items() if k != "samples"}
                     | {"count": lat.get("samples", 0)}},
        "broker_cpu": r["cpu"]["broker"],
        "report": r,
    }
