"""`ferrymq bench sqs` against real servers over real sockets: moto's server mode in this process
and the null SQS sink in a subprocess. These check the generator's counting (every message sent is
received and deleted, duplicates and failures are seen), never anyone's speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ferrymq.bench.sqs import calls, run, workers
from ferrymq.bench.sqs.summary import problems, summarize
from ferrymq.bench.sqs.targets import ROUTING_AUTH, Endpoint, open_endpoint
from ferrymq.testing import EmbeddedBroker

pytestmark = pytest.mark.timeout(90)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def moto() -> Iterator[Endpoint]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield Endpoint("moto", host, port, 0, ROUTING_AUTH)
    finally:
        server.stop()


def _plan(concurrency: int, seconds: float = 1.0) -> run.Plan:
    return run.Plan(seconds=seconds, concurrency=concurrency, processes=0, warmup_s=0.3, verify=True)


def test_one_loop_on_moto_receives_and_deletes_every_message_sent_exactly_once(moto: Endpoint) -> None:
    s = run.measure(moto, _plan(1))
    t, v = s["totals"], s["verify"]
    assert t["sent"] > 0 and t["sent"] % calls.BATCH_MAX == 0
    assert t["sent"] == t["received"] == t["deleted"] == v["expected"] == v["distinct_received"]
    assert (v["duplicates"], v["missing"], v["unexpected"], t["errors"], s["left"]) == (0, 0, 0, 0, 0)
    assert s["problems"] == []
    # every call inside the window was timed, per action
    assert sum(h["samples"] for h in s["latency_ms"].values()) == s["window"]["calls"]
    assert set(s["latency_ms"]) == {"SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"}


def test_concurrent_loops_on_moto_balance_counts_and_see_every_duplicate_delivery(moto: Endpoint) -> None:
    """moto 5.2's receive is not atomic across its threads: a message may come twice. Whatever it
    does, received = sent + duplicates and nothing sent goes missing."""
    s = run.measure(moto, _plan(4))
    t, v = s["totals"], s["verify"]
    assert t["errors"] == 0 and v["missing"] == 0 and v["unexpected"] == 0
    assert v["distinct_received"] == v["expected"] == t["sent"]
    assert t["received"] == t["sent"] + v["duplicates"] == t["deleted"]
    assert bool(v["duplicates"]) == any("verification failed" in p for p in s["problems"])


def test_idle_pollers_on_moto_hold_their_polls_and_receive_nothing(moto: Endpoint) -> None:
    plan = run.Plan(workload="idle-pollers", seconds=1.0, concurrency=20, processes=0, warmup_s=0.3)
    s = run.measure(moto, plan)
    assert s["connections"] == 20 and s["totals"]["errors"] == 0 and s["totals"]["received"] == 0
    assert s["problems"] == [] and s["left"] == 0


def test_concurrent_loops_on_ferrymq_receive_and_delete_every_message_once(ferry: EmbeddedBroker) -> None:
    u = urlparse(ferry.http_url)
    s = run.measure(Endpoint("ferrymq", u.hostname or "127.0.0.1", u.port or 0), _plan(4))
    t, v = s["totals"], s["verify"]
    assert t["sent"] > 0 and s["problems"] == [] and s["left"] == 0
    assert t["sent"] == t["received"] == t["deleted"] == v["distinct_received"] == v["expected"]
    assert v["duplicates"] == 0 and t["errors"] == 0


def test_refused_calls_are_counted_with_request_and_reply_and_fail_the_run() -> None:
    with open_endpoint("sink") as ep:
        job = workers.Job("pipeline", ep.host, ep.port, None, f"{ep.base_url}/000000000000/absent", 2,
                          time.monotonic(), 0.5, verify=True)
        results = workers.run_all(job, 0)
    s = summarize(results, 0.5, "pipeline")
    assert s["totals"]["errors"] >= 2 and s["totals"]["sent"] == 0
    send = next(f for f in s["failures"] if f["action"] == "SendMessageBatch")
    assert send["status"] == 400 and "QueueDoesNotExist" in send["reply"] and '"Entries"' in send["request"]
    assert problems(s, "pipeline")[0].startswith(f"{s['totals']['errors']} calls failed")


def test_cli_two_generator_processes_against_the_sink_count_exactly(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "ferrymq.bench", "sqs", "--target", "sink", "--processes", "2",
           "--concurrency", "6", "--seconds", "1", "--warmup", "2", "--verify", "--json",
           "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads(done.stdout)["rows"]
    t, v = row["totals"], row["verify"]
    assert row["generator_processes"] == 2 and row["connections"] == 6 and row["problems"] == []
    assert t["sent"] == t["received"] == t["deleted"] == v["distinct_received"] == v["expected"] > 0
    assert "| sink |" in done.stderr and list(tmp_path.glob("sqs-pipeline-*.json"))


def test_cli_rejects_a_bad_flag_value_with_one_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "ferrymq.bench", "sqs", "--wait", "21"], capture_output=True,
                          text=True, timeout=30, env=env)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--wait" in done.stderr
