"""Dead letters end to end: a real worker fills a DLQ, `ferrymq jobs dead` and `ferrymq jobs replay`
(real subprocesses) look at and replay it over AMQP, and the jobs run again."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pika
import pytest

from ferrymq.jobs import dlq
from ferrymq.jobs.app import App
from ferrymq.jobs.broker import PublishError
from ferrymq.jobs.testing import worker_thread
from ferrymq.testing import EmbeddedBroker
from tests.support import jobs_app
from tests.support.jobs import APP, ROOT, runs, wait_until

pytestmark = pytest.mark.timeout(120)


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FERRYMQ_JOBS_URL": url, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "ferrymq.cli", "jobs", *args], capture_output=True,
                          text=True, timeout=60, env=env, cwd=ROOT)


def fill_dlq(app: App, effects: Path, n: int) -> list[str]:
    """``n`` doomed jobs (two runs each) run by a real worker until all are dead letters."""
    ids = [app.jobs["doomed"].send().id for _ in range(n)]
    with worker_thread(app, concurrency=4):
        wait_until(lambda: dlq.count(app.url, "default.dlq") == n, 30, f"{n} dead letters")
    assert len(runs(effects, "doomed")) == 2 * n
    return ids


def test_jobs_dead_lists_failed_jobs_and_replay_all_runs_them_again_with_their_history(jobs_url, effects):
    app = jobs_app.sender(jobs_url)
    ids = fill_dlq(app, effects, 3)

    listed = cli(jobs_url, "dead", APP, "default")
    assert listed.returncode == 0, listed.stderr
    assert "default.dlq: 3 dead letters" in listed.stdout
    assert all(job_id in listed.stdout for job_id in ids)
    assert listed.stdout.count("retries exhausted: ValueError('this job always fails')") == 3
    assert dlq.count(jobs_url, "default.dlq") == 3, "looking took nothing away"

    replayed = cli(jobs_url, "replay", APP, "default", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "before 3, replayed 3, after 0" in replayed.stdout
    assert dlq.count(jobs_url, "default") == 3

    with worker_thread(app, concurrency=4):
        wait_until(lambda: dlq.count(jobs_url, "default.dlq") == 3, 30, "the replayed jobs to die again")
    assert len(runs(effects, "doomed")) == 12
    again = dlq.list_dead(app, "default")
    assert sorted(m.id for m, _, _ in again) == sorted(ids)
    for message, reason, headers in again:
        assert message.extra["replayed"] == 1
        assert [h["attempt"] for h in message.extra["history"]] == [0, 1, 0, 1]
        assert "this job always fails" in reason and "x-job-traceback" in headers
    app.close()


def test_replay_by_id_moves_only_that_job_and_leaves_the_rest_in_order(jobs_url, effects):
    app = jobs_app.sender(jobs_url)
    ids = fill_dlq(app, effects, 3)
    order = [m.id for m, _, _ in dlq.list_dead(app, "default")]
    assert sorted(order) == sorted(ids)

    report = dlq.replay(app, "default", order[1])
    assert (report.before, report.replayed, report.after) == (3, 1, 2)
    assert [m.id for m, _, _ in dlq.list_dead(app, "default")] == [order[0], order[2]]

    with worker_thread(app, concurrency=2):
        wait_until(lambda: dlq.count(jobs_url, "default.dlq") == 3, 30, "the replayed job to die again")
    reruns = [r for r in runs(effects, "doomed")][6:]
    assert [r[2] for r in reruns] == [0, 1], "the replayed job ran again from attempt 0"
    replayed = {m.id: m for m, _, _ in dlq.list_dead(app, "default")}
    assert replayed[order[1]].extra["replayed"] == 1
    assert "replayed" not in replayed[order[0]].extra

    missing = cli(jobs_url, "replay", APP, "default", "--id", "no-such-id")
    assert missing.returncode == 1
    assert "before 3, replayed 0, after 3" in missing.stdout
    assert missing.stderr.strip() == "ferrymq jobs: no dead letter of job id 'no-such-id' in default.dlq"
    app.close()


def test_replay_leaves_a_message_that_is_not_a_job_in_the_dlq_and_reports_it(jobs_url, effects):
    app = jobs_app.sender(jobs_url)
    fill_dlq(app, effects, 2)
    conn = pika.BlockingConnection(pika.URLParameters(jobs_url))
    conn.channel().basic_publish("", "default.dlq", b"\xff not a job")
    conn.close()

    report = dlq.replay(app, "default")
    assert (report.before, report.replayed, report.after) == (3, 2, 1)
    assert len(report.skipped) == 1 and "not a ferrymq.jobs message" in report.skipped[0]
    scan = dlq.scan_dead(app, "default")
    assert (scan.depth, scan.not_jobs, scan.letters) == (1, 1, [])
    app.close()


def test_a_replay_whose_republish_fails_acks_no_dead_letter(jobs_url, effects, monkeypatch):
    app = jobs_app.sender(jobs_url)
    fill_dlq(app, effects, 3)

    def refused(*_args: object, **_kwargs: object) -> None:
        raise PublishError("the broker refused 3 of 3 jobs")

    monkeypatch.setattr(app.publisher, "publish", refused)
    with pytest.raises(PublishError):
        dlq.replay(app, "default")
    assert dlq.count(jobs_url, "default.dlq") == 3
    assert dlq.count(jobs_url, "default") == 0
    app.close()


def test_jobs_commands_report_an_unknown_queue_and_an_unreachable_broker_in_one_line(jobs_url):
    unknown = cli(jobs_url, "dead", APP, "nosuchqueue")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("ferrymq jobs: no queue 'nosuchqueue.dlq' on the broker")
    assert len(unknown.stderr.strip().splitlines()) == 1

    with EmbeddedBroker() as gone:
        dead_url = gone.amqp_url
    unreachable = cli(dead_url, "replay", APP, "default", "--all")
    assert unreachable.returncode == 1
    assert "ferrymq jobs: cannot reach the broker at amqp://" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1


def table_rows(stdout: str) -> list[list[str]]:
    """The body rows of a rich table, as cell texts."""
    return [[cell.strip() for cell in line.split("│")[1:-1]] for line in stdout.splitlines()
            if line.startswith("│")]


def test_jobs_queues_shows_queue_and_dlq_depths_and_retry_schedule_prints_the_schedule(jobs_url, effects):
    app = jobs_app.sender(jobs_url)
    fill_dlq(app, effects, 2)
    shown = cli(jobs_url, "queues", APP)
    assert shown.returncode == 0, shown.stderr
    rows = {row[0]: row[1:] for row in table_rows(shown.stdout)}
    assert rows == {"critical": ["100", "0", "0", "0"], "default": ["50", "0", "0", "2"],
                    "bulk": ["10", "0", "0", "0"]}

    schedule = cli(jobs_url, "retry-schedule", APP, "flaky", "--id", "j-1")
    assert schedule.returncode == 0, schedule.stderr
    assert "flaky (id j-1): 3 retries" in schedule.stdout
    delays = app.retry_schedule("flaky", "j-1")
    expected = [[str(n + 1), f"{d / 1000:.3f}s", f"{sum(delays[:n + 1]) / 1000:.3f}s"]
                for n, d in enumerate(delays)]
    assert table_rows(schedule.stdout) == expected == [["1", "0.100s", "0.100s"], ["2", "0.100s", "0.200s"],
                                                       ["3", "0.100s", "0.300s"]]
    app.close()


def test_replay_on_rabbitmq_moves_every_dead_letter_back(rabbitmq_url):
    queue = f"ops-{uuid.uuid4().hex[:8]}"
    app = App(rabbitmq_url)

    @app.job(name="always_fails", queue=queue, retries=0)
    def always_fails(n: int) -> None:
        raise RuntimeError(f"no {n}")

    ids = [always_fails.send(n).id for n in range(3)]
    with worker_thread(app, concurrency=2):
        wait_until(lambda: dlq.count(rabbitmq_url, f"{queue}.dlq") == 3, 30, "3 dead letters on RabbitMQ")
    assert sorted(m.id for m in [d.message for d in dlq.list_dead(app, queue)]) == sorted(ids)
    report = dlq.replay(app, queue)
    assert (report.before, report.replayed, report.after) == (3, 3, 0)
    assert dlq.count(rabbitmq_url, queue) == 3
    app.close()
    conn = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    for name in (queue, f"{queue}.dlq"):
        conn.channel().queue_delete(name)
    conn.close()


def test_a_replay_is_in_the_audit_trail_of_an_app_that_keeps_job_state(jobs_url, tmp_path):
    app = App(jobs_url, store=f"sqlite:///{tmp_path / 'state.db'}", state=True)

    @app.job(name="fails_once_dead", retries=0)
    def fails_once_dead() -> None:
        raise RuntimeError("dead on arrival")

    sent = fails_once_dead.send()
    with worker_thread(app, concurrency=1):
        wait_until(lambda: dlq.count(jobs_url, "default.dlq") == 1, 30, "the dead letter")
    report = dlq.replay(app, "default", sent.id)
    assert (report.before, report.replayed, report.after) == (1, 1, 0)
    trail = [(e.state, e.attempt, e.worker_id) for e in app.state.store.history(sent.id)]
    assert [t[0] for t in trail] == ["enqueued", "started", "failed", "dead", "replayed"]
    assert trail[-1] == ("replayed", 0, dlq.REPLAYER)
    assert app.state.store.state(sent.id).state == "replayed"
    app.close()
