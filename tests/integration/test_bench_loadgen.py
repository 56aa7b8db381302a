"""The load generator (``ferrymq bench``), each workload briefly against an embedded FerryMQ:
its report adds up (expected deliveries = completed + left + lost, lost 0 when confirmed), its
latency histogram matches a sink that waits a known time, and it runs against a private
RabbitMQ. Short runs: these check the generator, not anyone's throughput."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ferrymq.bench.api import bench
from ferrymq.bench.report import check
from ferrymq.bench.run import run_workload
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Workload
from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)

BRIEF = {"seconds": 0.6, "warmup": 0.2, "drain_seconds": 5.0, "interval": 0.2}
WORKLOADS = {
    "max": {},
    "steady": {"kind": "steady", "rate": 2000},
    "bursty": {"kind": "bursty", "rate": 5000, "burst_on": 0.1, "burst_off": 0.2},
    "fanout": {"kind": "fanout", "queues": 3, "consumers": 3},
    "task": {"kind": "task", "producers": 2, "consumers": 3, "prefetch": 20, "fail_rate": 0.2,
             "max_retries": 1, "persistent": True},
    "stream": {"kind": "stream", "rate": 2000, "consumers": 2},
    "fire-and-forget": {"confirm": False, "rate": 5000, "kind": "steady"},
}


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_each_workload_adds_up_against_ferrymq(ferry: EmbeddedBroker, name: str) -> None:
    w = Workload.from_dict({**BRIEF, **WORKLOADS[name]})
    r = run_workload(Target("ferrymq", ferry.amqp_url, "amqp", os.getpid()), w)
    assert check(r) == [], r["errors"]
    t = r["totals"]
    assert t["published"] > 100
    assert t["lost"] == 0 and t["left"] == 0
    assert t["expected"] == t["completed"]
    if w.confirm:
        assert t["confirmed"] == t["published"] and t["nacked"] == 0
    lat = r["latency_ms"]
    assert lat["samples"] > 0 and 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert r["timeline"]["t"] and max(r["timeline"]["consumed_per_s"]) > 0
    assert r["samples"]["t"], "the monitor sampled nothing"
    assert r["cpu"]["broker"] is not None and all(c > 0 for c in r["cpu"]["producers"])
    if name == "fanout":
        assert t["expected"] == 3 * t["published"] == t["consumed"]
    if name == "stream":
        assert t["expected"] == 2 * t["published"]  # each reader reads the whole log
    if name == "task":
        assert t["retried"] > 0 and t["dead_lettered"] > 0
        assert t["dlq_depth"] == t["dead_lettered"]
        assert t["consumed"] == t["published"] + t["retried"]


def test_slow_consumer_leaves_a_backlog_that_is_counted_not_lost(ferry: EmbeddedBroker) -> None:
    w = Workload(kind="steady", rate=3000, prefetch=20, work_us=1000, seconds=0.6, warmup=0.2,
                 drain_seconds=0.3, interval=0.2)
    r = run_workload(Target("ferrymq", ferry.amqp_url, "amqp", os.getpid()), w)
    t = r["totals"]
    assert check(r) == []
    assert t["left"] > 0 and t["lost"] == 0
    assert t["expected"] == t["completed"] + t["left"]
    assert max(d for d in r["samples"]["depth"] if d is not None) > 0


def test_latency_histogram_matches_a_sink_that_waits_30_ms(tmp_path) -> None:
    w = Workload(kind="steady", rate=400, seconds=1.0, warmup=0.2, drain_seconds=3.0, prefetch=1000)
    run = bench(["sink"], w, sink_delay_ms=30.0, out_dir=tmp_path, progress=False)
    [r] = run["reports"]
    assert r["totals"]["lost"] == 0, r["errors"]
    lat = r["latency_ms"]
    assert lat["samples"] == pytest.approx(400, abs=2)
    # the sink's timer (uvloop call_later) has 1 ms granularity: a delivery may leave up to 1 ms early
    assert lat["min"] >= 29.0 and 30.0 <= lat["p50"] <= 36.0, lat
    assert lat["p99"] <= 80.0, lat  # generous: a shared 2-core machine
    page = (tmp_path / os.listdir(tmp_path)[0] / "report.html").read_text()
    assert "<svg" in page


def test_cli_against_the_sink_confirms_every_publish() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ferrymq.bench", "--target", "sink", "--seconds", "1", "--warmup", "0.2",
         "--consumers", "0", "--json", "--indent", "0", "--no-save", "--no-progress"],
        capture_output=True, text=True, timeout=60, check=True).stdout
    [r] = json.loads(out)["reports"]
    t = r["totals"]
    assert t["published"] > 10_000 and t["confirmed"] == t["published"] and t["nacked"] == 0
    assert r["published_per_s"] > 10_000
    assert r["consumed_per_s"] is None and r["cpu"]["consumers"] == []
    assert r["cpu"]["broker"] > 0  # the sink's own process


@pytest.mark.rabbitmq
def test_against_rabbitmq_nothing_is_lost(rabbitmq_url: str) -> None:
    run = bench([f"rabbitmq={rabbitmq_url}"], Workload(seconds=1.0, warmup=0.2, drain_seconds=5.0),
                progress=False)
    [r] = run["reports"]
    assert check(r) == []
    t = r["totals"]
    assert t["published"] > 1000 and t["confirmed"] == t["published"] == t["completed"]
    assert t["lost"] == 0
    assert r["cpu"]["broker"] > 0  # the node's pid, found from its listening port
