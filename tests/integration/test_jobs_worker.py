"""ferrymq.jobs end to end: real `ferrymq worker` processes against a real broker over sockets."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
import pytest

from ferrymq.chaos.broker import BrokerProcess, free_port
from ferrymq.jobs import SerializationError
from ferrymq.jobs.message import JobMessage
from tests.support.jobs import ROOT, WorkerProcess, queue_depth, runs, wait_until
from tests.support.jobs_app import sender

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    return tmp_path / "effects.db"


def test_two_worker_processes_run_every_sent_job_once(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["record"].send_many([(i,) for i in range(3000)])
    worker = WorkerProcess(amqp_url, effects, "--processes", "2", "--concurrency", "4")
    try:
        wait_until(lambda: len(runs(effects, "record")) >= 3000, 60, "3000 runs")
    finally:
        worker.stop()
    recorded = runs(effects, "record")
    assert sorted(int(r[1]) for r in recorded) == list(range(3000))
    assert len({r[3] for r in recorded}) == 2, "both processes took jobs"


def test_failing_job_is_retried_after_its_backoff_and_succeeds_on_the_second_attempt(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["flaky"].send(7)
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "2")
    try:
        wait_until(lambda: len(runs(effects, "flaky")) >= 2, 30, "the retry")
    finally:
        worker.stop()
    assert [(r[1], r[2]) for r in runs(effects, "flaky")] == [("7", 0), ("7", 1)]


def test_job_out_of_attempts_lands_in_its_dlq_with_error_traceback_and_history(amqp_url, effects):
    app = sender(amqp_url)
    sent = app.jobs["doomed"].send()
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "2")
    try:
        wait_until(lambda: queue_depth(amqp_url, "default.dlq") >= 1, 30, "a dead letter")
    finally:
        worker.stop()
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    _, props, body = conn.channel().basic_get("default.dlq", auto_ack=True)
    conn.close()
    dead = JobMessage.from_body(body)
    assert dead.id == sent.id and props.message_id == sent.id
    assert "retries exhausted" in props.headers["x-job-error"]
    assert "ValueError: this job always fails" in props.headers["x-job-traceback"]
    assert [h["attempt"] for h in dead.extra["history"]] == [0, 1]
    assert len(runs(effects, "doomed")) == 2


def test_unknown_job_and_undecodable_body_go_to_the_dlq_and_the_worker_keeps_working(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["record"].send(1)  # declares the queues
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    ch.basic_publish("", "default", b"\xff not json")
    stranger = JobMessage("x1", "no.such.job", "default", [], {})
    ch.basic_publish("", "default", stranger.body())
    conn.close()
    app.jobs["record"].send(2)
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "2")
    try:
        wait_until(lambda: len(runs(effects, "record")) >= 2 and queue_depth(amqp_url, "default.dlq") >= 2,
                   30, "both good jobs and two dead letters")
    finally:
        worker.stop()
    conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
    ch = conn.channel()
    reasons = [ch.basic_get("default.dlq", auto_ack=True)[1].headers["x-job-error"] for _ in range(2)]
    conn.close()
    assert any("not a ferrymq.jobs message" in r for r in reasons)
    assert any("unknown job 'no.such.job'" in r for r in reasons)


def test_arguments_json_cannot_carry_fail_at_send_and_nothing_is_published(amqp_url):
    app = sender(amqp_url)
    app.jobs["record"].send(0)
    before = queue_depth(amqp_url, "default")
    with pytest.raises(SerializationError, match="JSON-serialisable"):
        app.jobs["record"].send(object())
    assert queue_depth(amqp_url, "default") == before


def test_a_job_module_that_fails_to_import_stops_the_worker_with_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ferrymq.cli", "worker", "no_such_module_xyz:app"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load 'no_such_module_xyz:app'" in lines[0], result.stderr


def test_sigterm_drains_the_running_job_and_leaves_the_rest_queued(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["slow"].send_many([((i, 1.0), {}) for i in range(6)])
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "1", "--prefetch", "3")
    try:
        wait_until(lambda: queue_depth(amqp_url, "default") <= 3, 30, "the worker to take jobs")
        worker.signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        worker.stop()
    done = len(runs(effects, "slow"))
    assert done >= 1, "the job running at SIGTERM finished"
    assert done + queue_depth(amqp_url, "default") == 6, "every job not run went back to its queue"


def test_sigkilled_worker_loses_no_job_its_replacement_runs_them(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["slow"].send_many([((i, 0.05), {}) for i in range(200)])
    first = WorkerProcess(amqp_url, effects, "--concurrency", "4")
    try:
        wait_until(lambda: len(runs(effects, "slow")) >= 20, 30, "some runs")
    finally:
        first.stop()  # SIGKILL
    second = WorkerProcess(amqp_url, effects, "--concurrency", "8")
    try:
        wait_until(lambda: len({r[1] for r in runs(effects, "slow")}) >= 200, 60, "every job")
    finally:
        second.stop()
    recorded = runs(effects, "slow")
    assert {int(r[1]) for r in recorded} == set(range(200))
    assert any(r[4] for r in recorded), "jobs in the killed worker's hands came back as redeliveries"


def test_weighted_queues_share_one_slot_by_weight_while_all_are_backlogged(amqp_url, effects):
    app = sender(amqp_url)
    for name in ("record_critical", "record", "record_bulk"):
        app.jobs[name].send_many([(i,) for i in range(400)])
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "1", "--prefetch", "20")
    try:
        wait_until(lambda: len(runs(effects)) >= 320, 60, "320 runs")
    finally:
        worker.stop()
    first = [r[0] for r in runs(effects)][:320]
    counts = {name: first.count(name) for name in ("record_critical", "record", "record_bulk")}
    # weights 100 : 50 : 10 -> 200 : 100 : 20 of 320; a buffer the broker has not refilled yet
    # blurs it (more so on a loaded machine), so the bounds are wide but still tell weights apart
    assert 150 <= counts["record_critical"] <= 240, counts
    assert 60 <= counts["record"] <= 140, counts
    assert 5 <= counts["record_bulk"] <= 60, counts
    assert counts["record_critical"] > counts["record"] > counts["record_bulk"], counts


def test_higher_priority_job_overtakes_a_backlog_in_its_queue(amqp_url, effects):
    app = sender(amqp_url)
    app.jobs["record"].send_many([(i,) for i in range(300)], priority=1)
    app.jobs["record"].send(9999, priority=9)
    worker = WorkerProcess(amqp_url, effects, "--concurrency", "1", "--prefetch", "1")
    try:
        wait_until(lambda: len(runs(effects, "record")) >= 301, 60, "every run")
    finally:
        worker.stop()
    order = [r[1] for r in runs(effects, "record")]
    assert order.index("9999") < 5, order[:10]


def test_delayed_job_is_held_by_the_broker_across_a_restart(tmp_path, effects):
    port = free_port()
    broker = BrokerProcess(tmp_path / "data", port)
    broker.start()
    url = f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    try:
        app = sender(url)
        app.jobs["record"].send(41, delay="3s")
        app.jobs["record"].send(42)
        app.close()
        broker.stop()
        broker.start()
        worker = WorkerProcess(url, effects, "--concurrency", "2")
        try:
            wait_until(lambda: len(runs(effects, "record")) >= 2, 30, "the delayed job")
        finally:
            worker.stop()
        assert [r[1] for r in runs(effects, "record")] == ["42", "41"]
    finally:
        broker.kill9()



def test_a_live_worker_keeps_its_long_job_and_a_frozen_ones_job_is_redelivered_after_its_lease(effects):
    from ferrymq.jobs import App
    from ferrymq.testing import EmbeddedBroker

    with EmbeddedBroker() as broker:  # its own broker: the queues are declared with the lease
        url = broker.amqp_url
        app = App(url, queues={"default": 50}, priorities=True, lease="1s")
        app.job(name="slow", retries=0)(lambda n, seconds: None)
        app.jobs["slow"].send(1, 2.5)  # 2.5 leases long
        first = WorkerProcess(url, effects, "--concurrency", "1", lease="1s")
        second = third = None
        try:
            wait_until(lambda: queue_depth(url, "default") == 0, 30, "the first worker to take job 1")
            second = WorkerProcess(url, effects, "--concurrency", "1", lease="1s")  # idle, waiting
            wait_until(lambda: len(runs(effects, "slow")) >= 1, 30, "job 1")
            time.sleep(3.0)  # a copy the second worker took after an expired lease would finish now
            second.stop()
            app.jobs["slow"].send(2, 2.5)
            wait_until(lambda: queue_depth(url, "default") == 0, 30, "the first worker to take job 2")
            first.signal(signal.SIGSTOP)  # alive to TCP but frozen: it stops extending its lease
            third = WorkerProcess(url, effects, "--concurrency", "1", lease="1s")
            wait_until(lambda: any(r[1] == "2" for r in runs(effects, "slow")), 30, "job 2 elsewhere")
        finally:
            first.signal(signal.SIGCONT)
            for worker in (first, second, third):
                if worker is not None:
                    worker.stop()
        recorded = runs(effects, "slow")
        assert [r[1] for r in recorded].count("1") == 1, "the live worker kept its long job: it ran once"
        [job2] = [r for r in recorded if r[1] == "2"]
        assert job2[3] == third.proc.pid and job2[4] == 1, "job 2 came back, redelivered, to the third worker"
