"""The raw-socket load generator (python -m ferrymq.bench): its accounting against the null sink
(every publish confirmed, report shape) and against a real RabbitMQ (nothing lost). Short runs:
these check the generator, not anyone's throughput."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from ferrymq.bench.run import BenchOptions, run
from tests.support.fixtures import rabbitmq  # noqa: F401  (the session fixture)
from tests.support.rabbitmq import RabbitNode, free_port

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sink_url() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ferrymq.bench", "sink", "--port", str(port)],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None, "the sink exited"
                assert time.monotonic() < deadline, "the sink did not listen"
                time.sleep(0.05)
        yield f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    finally:
        proc.terminate()
        proc.wait(5)


def test_cli_against_sink_confirms_every_publish(sink_url: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ferrymq.bench", "--url", sink_url, "--seconds", "1",
         "--warmup", "0.2", "--consumers", "0", "--confirm-window", "500", "--indent", "0"],
        capture_output=True, text=True, timeout=30, check=True).stdout
    report = json.loads(out)
    assert report["errors"] == []
    for key in ("published_per_s", "confirmed_per_s", "consumed_per_s", "latency_ms", "cpu",
                "totals", "producers", "consumers", "machine", "options"):
        assert key in report
    totals = report["totals"]
    assert totals["published"] > 10_000
    assert totals["confirmed"] == totals["published"]
    assert totals["nacked"] == 0
    assert report["published_per_s"] > 10_000
    assert report["confirmed_per_s"] > 10_000
    [producer_cpu] = report["cpu"]["producers"]
    assert 0 < producer_cpu < 1.5
    assert report["consumed_per_s"] is None and report["cpu"]["consumers"] == []


def test_against_rabbitmq_nothing_is_lost(rabbitmq: RabbitNode) -> None:  # noqa: F811
    report = run(BenchOptions(url=rabbitmq.amqp_url, seconds=2.0, warmup=0.2,
                              broker_pid=rabbitmq.beam_pid, drain_seconds=5.0))
    assert report["errors"] == []
    totals = report["totals"]
    assert totals["published"] > 1000
    assert totals["confirmed"] == totals["published"]
    assert totals["consumed"] == totals["published"]
    assert totals["lost"] == 0
    assert report["consumed_per_s"] > 0
    lat = report["latency_ms"]
    assert lat["samples"] > 0 and 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert report["cpu"]["broker"] > 0
