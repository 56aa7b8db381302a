"""The Jobs page's JSON views (/api/jobs/...) over a real broker and a real ``ferrymq worker``
process: a job that fails and waits to retry, one that dies into its DLQ and is replayed from
the broker's API, a cron entry with its next runs and leader, and the worker with its heartbeat."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from ferrymq.jobs.app import App
from ferrymq.jobs.cron import CronSchedule
from ferrymq.testing import EmbeddedBroker
from tests.support import jobsdash_app
from tests.support.jobs import WorkerProcess, wait_until

pytestmark = pytest.mark.timeout(120)


@dataclass
class Setup:
    broker: EmbeddedBroker
    worker: WorkerProcess
    sender: App
    ids: dict[str, str]

    def get(self, path: str) -> Any:
        r = requests.get(self.broker.http_url + path, auth=("guest", "guest"), timeout=10)
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with jobsdash_app.running(tmp_path_factory.mktemp("jobsdash"), concurrency=2) as (broker, worker, sender):
        ids = {"hello": sender.jobs["hello"].send(1).id, "flaky": sender.jobs["flaky"].send("o-1").id,
               "doomed": sender.jobs["doomed"].send("o-2").id}
        setup = Setup(broker, worker, sender, ids)
        wait_until(lambda: _settled(setup), 30, "the jobs to succeed, wait to retry and die")
        yield setup


def _settled(s: Setup) -> bool:
    states = {j["job"]: j for j in s.get("/api/jobs/states")["jobs"]}
    return (states.get("hello", {}).get("succeeded") == 1 and states.get("flaky", {}).get("retrying") == 1
            and states.get("doomed", {}).get("dead") == 1)


def test_job_queues_count_what_waits_to_retry_and_what_died_per_queue(setup: Setup) -> None:
    rows = {r["queue"]: r for r in setup.get("/api/jobs/queues")}
    assert set(rows) == {"default", "billing"}
    billing = rows["billing"]
    assert (billing["retrying"], billing["dead"], billing["dlq"]) == (1, 1, "billing.dlq")
    assert (billing["queued"], billing["running"], billing["delayed"]) == (0, 0, 0)
    assert rows["default"]["dead"] == 0 and rows["default"]["consumers"] == 1


def test_states_per_job_come_from_the_store_the_workers_write(setup: Setup) -> None:
    answer = setup.get("/api/jobs/states")
    assert answer["error"] is None and answer["store"].endswith("jobs.db")
    states = {j["job"]: j for j in answer["jobs"]}
    assert states["hello"]["succeeded"] == 1 and states["hello"]["dead"] == 0
    assert states["flaky"]["retrying"] == 1 and states["doomed"]["dead"] == 1


def test_retry_schedule_shows_the_next_attempt_its_time_and_the_error(setup: Setup) -> None:
    answer = setup.get("/api/jobs/retries")
    assert (answer["total"], answer["held"], answer["scanned"]) == (1, 1, 1)
    (retry,) = answer["jobs"]
    assert (retry["job"], retry["id"], retry["queue"], retry["attempt"], retry["kind"]) == (
        "flaky", setup.ids["flaky"], "billing", 1, "retry")
    assert "card declined for o-1" in retry["error"]
    now_ms = setup.sender.clock.now_ms()
    assert now_ms + 50 * 60_000 < retry["due_ms"] <= now_ms + 3_600_000, "an hour's backoff"


def test_dead_letters_show_the_job_and_its_error_and_replay_sends_it_back(setup: Setup) -> None:
    peek = setup.get("/api/jobs/dlq/%2F/billing.dlq")
    (letter,) = peek["letters"]
    assert (letter["job"], letter["id"], letter["attempts"], letter["replayed"]) == (
        "doomed", setup.ids["doomed"], 1, 0)
    assert "order o-2 does not exist" in letter["error"]
    url = setup.broker.http_url + "/api/ferrymq/dlq/%2F/billing.dlq/replay"
    r = requests.post(url, json={"count": None}, auth=("guest", "guest"), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["replayed"] == 1
    assert (r.json()["before"]["dlq"], r.json()["after"]["dlq"]) == (1, 0)
    # the worker runs it again from attempt 0; it dies again, now counted as replayed once
    wait_until(lambda: [x["replayed"] for x in setup.get("/api/jobs/dlq/%2F/billing.dlq")["letters"]] == [1],
               30, "the replayed job to die again")

    def history() -> list[str]:
        return [e.state for e in setup.sender.state.store.history(setup.ids["doomed"])]

    wait_until(lambda: history().count("dead") == 2, 10, "the worker to record the second death")
    assert history() == ["enqueued", "started", "failed", "dead", "replayed", "started", "failed", "dead"]


def test_cron_entries_show_next_runs_and_the_leading_scheduler(setup: Setup) -> None:
    answer = setup.get("/api/jobs/crons")
    (cron,) = answer["crons"]
    assert (cron["name"], cron["cron"], cron["tz"], cron["job"]) == ("daily_report", "0 9 * * *",
                                                                      "Europe/Paris", "daily_report")
    now_ms = setup.sender.clock.now_ms()
    expected = CronSchedule("0 9 * * *", "Europe/Paris").next_fire(now_ms - 60_000)
    assert cron["next_runs"][0] == expected and len(cron["next_runs"]) == 3
    (worker,) = setup.get("/api/jobs/workers")
    assert cron["schedulers"] == [worker["worker_id"]]
    wait_until(lambda: setup.get("/api/jobs/crons")["leader"] is not None, 15, "a scheduler to lead")
    assert setup.get("/api/jobs/crons")["leader"].startswith(f"{worker['host']}:{worker['pid']}:")


def test_workers_are_listed_with_their_heartbeat_while_connected(setup: Setup) -> None:
    (worker,) = setup.get("/api/jobs/workers")
    assert worker["pid"] == setup.worker.proc.pid
    assert set(worker["queues"]) == {"default", "billing"} and worker["concurrency"] == 2
    assert worker["scheduler"] is True and worker["state"] == "alive"
    assert worker["heartbeat_timeout_s"] == 30 and worker["heartbeat_age_ms"] >= 0
    assert worker["last_heartbeat_ms"] >= worker["connected_at"]


def test_a_worker_that_stops_leaves_the_list(setup: Setup) -> None:
    """It ends the worker: the tests after it need none."""
    setup.worker.signal(signal.SIGTERM)
    setup.worker.wait(30)
    wait_until(lambda: setup.get("/api/jobs/workers") == [], 10, "the worker's connection to close")
    assert setup.get("/api/jobs/crons")["crons"] == [], "no connected worker announces the cron"


def test_a_job_dlq_that_is_not_a_queue_is_a_404_and_a_bad_count_a_400(setup: Setup) -> None:
    auth = ("guest", "guest")
    r = requests.get(setup.broker.http_url + "/api/jobs/dlq/%2F/nope.dlq", auth=auth, timeout=10)
    assert r.status_code == 404
    r = requests.get(setup.broker.http_url + "/api/jobs/dlq/%2F/billing.dlq?count=x", auth=auth, timeout=10)
    assert (r.status_code, r.json()["reason"]) == (400, "count must be an integer")


def test_the_job_views_need_a_login(setup: Setup) -> None:
    for view in ("queues", "states", "retries", "dlq", "crons", "workers"):
        assert requests.get(f"{setup.broker.http_url}/api/jobs/{view}", timeout=10).status_code == 401
