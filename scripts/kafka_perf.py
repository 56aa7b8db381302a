"""Kafka produce/consume throughput against a real `ferrymq serve` process, with confluent-kafka.

    .venv/bin/python scripts/kafka_perf.py --records 2000000 --size 100 --fsync never [--profile out.svg]
    .venv/bin/python scripts/kafka_perf.py --fetch-log [--consumer fetch.queue.backoff.ms=10]

Starts a broker on free ports in a temporary data directory (or uses --bootstrap), produces N records
of --size bytes (acks=1, linger 5 ms, batch 1 MB) to a 1-partition topic, then consumes them from the
beginning with one consumer, and prints records/s and MB/s of each phase. --profile runs py-spy on
the broker during the consume phase (or the produce phase with --profile-phase produce). The load
itself is ``ferrymq.bench.kafka_load`` (produce_count, consume_count): this script only wires it up.
--fetch-log reads librdkafka's own fetcher log during the consume (``ferrymq.bench.fetch_log``): records
and bytes per Fetch answer, and how often the client parked the partition because its queue was full.
--consumer KEY=VALUE (repeatable) adds one consumer setting, to try one change at a time.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from ferrymq.bench import kafka_load
from ferrymq.bench.fetch_log import FetchLog
from ferrymq.bench.targets import open_target

_PROJECT_VENV = Path(__file__).resolve().parents[1] / ".venv" / "bin"
VENV_BIN = _PROJECT_VENV if (_PROJECT_VENV / "py-spy").exists() else Path(sys.executable).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=100)
    ap.add_argument("--fsync", default="never")
    ap.add_argument("--bootstrap")
    ap.add_argument("--profile")
    ap.add_argument("--tuned", action="store_true",
                    help="no fetch queue backoff, 1M queued records (else librdkafka defaults)")
    ap.add_argument("--profile-phase", default="consume", choices=["produce", "consume"])
    ap.add_argument("--fetch-log", action="store_true", help="what librdkafka's fetcher did (debug=fetch)")
    ap.add_argument("--consumer", action="append", default=[], metavar="KEY=VALUE",
                    help="one more consumer setting (repeatable)")
    a = ap.parse_args()
    extra = _settings(ap, a.consumer)
    log = FetchLog() if a.fetch_log else None
    with contextlib.ExitStack() as stack:
        if a.bootstrap:
            bootstrap, pid = a.bootstrap, 0
        else:  # a private `ferrymq serve` on free ports, in a temporary data directory
            target = stack.enter_context(open_target("ferrymq-kafka", fsync=a.fsync))
            bootstrap, pid = target.url.removeprefix("kafka://"), target.broker_pid
        topic = f"perf-{uuid.uuid4().hex[:6]}"
        kafka_load.create_topic(bootstrap, topic)
        spy = _spy(a, pid, "produce")
        dt = kafka_load.produce_count(bootstrap, topic, a.records, a.size)
        _stop(spy)
        _report("produce", a.records, a.size, dt)
        spy = _spy(a, pid, "consume")
        dt = kafka_load.consume_count(bootstrap, topic, a.records, a.tuned,
                                      {**extra, **(log.config() if log else {})})
        _stop(spy)
        _report("consume", a.records, a.size, dt)
        if log:
            print(log.summary(), flush=True)


def _settings(ap: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    """``--consumer`` pairs as librdkafka settings (it parses the values itself)."""
    out = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            ap.error(f"--consumer wants KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


Proc = subprocess.Popen[bytes]


def _spy(a: argparse.Namespace, pid: int, phase: str) -> Proc | None:
    if not a.profile or not pid or a.profile_phase != phase:
        return None
    fmt = "speedscope" if a.profile.endswith(".json") else "flamegraph"
    return subprocess.Popen([str(VENV_BIN / "py-spy"), "record", "-o", a.profile, "-p", str(pid),
                             "-r", "200", "-f", fmt])


def _stop(spy: Proc | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(30)


def _report(phase: str, n: int, size: int, dt: float) -> None:
    mb_s = n * size / dt / 1e6
    print(f"{phase}: {n} x {size} B in {dt:.2f} s = {n / dt:,.0f} rec/s, {mb_s:.1f} MB/s", flush=True)


if __name__ == "__main__":
    main()
