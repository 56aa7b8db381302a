"""The job state store on a real SQLite file and a real PostgreSQL server: audit trail, current
state rules, cancellation, progress, listing, purge, and group commit under many threads."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from ferrymq.jobs.db import Database
from ferrymq.jobs.state import STATES, StateStore
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

NOW = 1_700_000_000_000


@pytest.fixture
def store(any_db_url: str) -> StateStore:  # noqa: F811
    return StateStore(Database(any_db_url, durable=False))


def run_once(store: StateStore, job_id: str, *, fail: bool = False, at: int = NOW) -> None:
    store.record(job_id, "pay", "critical", "enqueued", at)
    store.record(job_id, "pay", "critical", "started", at + 1, worker_id="w1")
    if fail:
        store.record(job_id, "pay", "critical", "failed", at + 2, worker_id="w1", detail="ValueError: no")
    else:
        store.record(job_id, "pay", "critical", "succeeded", at + 2, worker_id="w1")


def test_history_lists_every_event_in_order_with_worker_attempt_and_detail(store: StateStore) -> None:
    run_once(store, "j1", fail=True)
    store.record("j1", "pay", "critical", "retried", NOW + 3, worker_id="w1", detail="ValueError: no",
                 delay_ms=2_000)
    store.record("j1", "pay", "critical", "started", NOW + 2_003, worker_id="w2", attempt=1)
    store.record("j1", "pay", "critical", "succeeded", NOW + 2_004, worker_id="w2", attempt=1)
    trail = [(e.state, e.worker_id, e.attempt, e.detail, e.delay_ms) for e in store.history("j1")]
    assert trail == [("enqueued", "", 0, "", None), ("started", "w1", 0, "", None),
                     ("failed", "w1", 0, "ValueError: no", None),
                     ("retried", "w1", 0, "ValueError: no", 2_000),
                     ("started", "w2", 1, "", None), ("succeeded", "w2", 1, "", None)]
    state = store.state("j1")
    assert state is not None and (state.state, state.attempt, state.worker_id) == ("succeeded", 1, "w2")


def test_a_late_enqueued_write_does_not_move_a_started_job_back(store: StateStore) -> None:
    store.record("j1", "pay", "critical", "started", NOW, worker_id="w1")
    store.record("j1", "pay", "critical", "enqueued", NOW)  # the producer's write landed second
    state = store.state("j1")
    assert state is not None and state.state == "started"
    assert [e.state for e in store.history("j1")] == ["started", "enqueued"]


def test_an_older_event_does_not_overwrite_a_newer_state(store: StateStore) -> None:
    store.record("j1", "pay", "critical", "succeeded", NOW + 10)
    store.record("j1", "pay", "critical", "started", NOW + 5)
    state = store.state("j1")
    assert state is not None and state.state == "succeeded"


def test_cancelling_a_queued_job_marks_it_and_it_stays_cancelled_when_a_worker_skips_it(
        store: StateStore) -> None:
    store.record("j1", "pay", "critical", "enqueued", NOW)
    assert not store.is_cancelled("j1")
    assert store.cancel("j1", NOW + 1, reason="customer asked")
    assert store.is_cancelled("j1")
    store.record("j1", "pay", "critical", "started", NOW + 2, worker_id="w1")  # a racing start
    state = store.state("j1")
    assert state is not None and (state.state, state.detail, state.cancel_requested) == \
        ("cancelled", "customer asked", True)
    assert [e.state for e in store.history("j1")] == ["enqueued", "cancelled", "started"]


def test_a_finished_job_cannot_be_cancelled_and_a_replayed_one_is_no_longer_cancelled(
        store: StateStore) -> None:
    run_once(store, "done")
    assert not store.cancel("done", NOW + 10)
    store.record("dead", "pay", "critical", "dead", NOW)
    assert not store.cancel("dead", NOW + 1)
    store.record("j1", "pay", "critical", "enqueued", NOW)
    assert store.cancel("j1", NOW + 1)
    assert not store.cancel("j1", NOW + 2)  # already cancelled
    store.record("j1", "pay", "critical", "replayed", NOW + 3)
    assert not store.is_cancelled("j1")


def test_an_unknown_job_can_be_cancelled_before_its_first_event_arrives(store: StateStore) -> None:
    assert store.cancel("future", NOW)
    store.record("future", "pay", "critical", "enqueued", NOW + 1)
    assert store.is_cancelled("future")
    assert store.cancelled_among(["future", "other"]) == {"future"}
    assert store.cancelled_among([]) == set()


def test_progress_is_stored_on_the_current_state(store: StateStore) -> None:
    store.record("j1", "pay", "critical", "started", NOW, worker_id="w1")
    store.progress("j1", 0.25, "page 1 of 4", NOW + 1)
    store.progress("j1", 0.5, "page 2 of 4", NOW + 2)
    state = store.state("j1")
    assert state is not None and (state.progress, state.note) == (0.5, "page 2 of 4")
    with pytest.raises(ValueError, match="fraction"):
        store.progress("j1", 1.5, "", NOW)


def test_list_jobs_filters_by_state_and_name_newest_first(store: StateStore) -> None:
    for i in range(5):
        run_once(store, f"ok{i}", at=NOW + 10 * i)
    run_once(store, "bad", fail=True, at=NOW + 100)
    store.record("mail", "send_mail", "default", "enqueued", NOW + 200)
    assert [s.job_id for s in store.list_jobs(state="succeeded", limit=3)] == ["ok4", "ok3", "ok2"]
    assert [s.job_id for s in store.list_jobs(state="failed")] == ["bad"]
    assert [s.job_id for s in store.list_jobs(job="send_mail")] == ["mail"]
    assert store.list_jobs()[0].job_id == "mail"
    assert store.counts() == {name: 0 for name in STATES} | {"succeeded": 5, "failed": 1, "enqueued": 1}
    with pytest.raises(ValueError, match="unknown job state"):
        store.list_jobs(state="running")
    with pytest.raises(ValueError, match="limit"):
        store.list_jobs(limit=0)


def test_purge_forgets_finished_jobs_older_than_a_time_and_keeps_the_rest(store: StateStore) -> None:
    run_once(store, "old")
    run_once(store, "old-failed", fail=True)  # not final: a retry may follow
    run_once(store, "new", at=NOW + 1_000)
    assert store.purge(NOW + 500) == 1
    assert store.state("old") is None and store.history("old") == []
    assert store.state("old-failed") is not None and store.state("new") is not None


def test_unknown_state_is_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="unknown job state 'running'"):
        store.record("j1", "pay", "critical", "running", NOW)


def test_many_threads_recording_at_once_lose_no_event(store: StateStore) -> None:
    threads, jobs_each = 8, 60
    start = threading.Barrier(threads)

    def work(t: int) -> None:
        start.wait()
        for i in range(jobs_each):
            run_once(store, f"t{t}-{i}", at=NOW + i)
            store.progress(f"t{t}-{i}", 1.0, "done", NOW + i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often: a race between adding and writing shows up
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(interval)
    assert store.counts()["succeeded"] == threads * jobs_each
    with store.db.transaction() as tx:
        assert tx.execute("SELECT COUNT(*) FROM ferrymq_job_events").fetchone()[0] == threads * jobs_each * 3
    assert [e.state for e in store.history("t3-17")] == ["enqueued", "started", "succeeded"]


def test_a_second_store_on_the_same_database_sees_the_first_ones_writes(store: StateStore) -> None:
    run_once(store, "j1")
    store.flush()
    other = StateStore(Database(store.db.url, durable=False))
    state = other.state("j1")
    assert state is not None and state.state == "succeeded"
    assert other.cancel("j2", NOW) and store.is_cancelled("j2")


def test_lazy_events_reach_the_database_without_a_flush_and_the_idle_writer_ends_and_restarts(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from ferrymq.jobs import state as state_module
    from tests.support.jobs import wait_until

    monkeypatch.setattr(state_module, "LAZY_IDLE_S", 0.2)
    other = StateStore(Database(store.db.url, durable=False))  # as another process reads it
    store.record("j1", "pay", "critical", "started", NOW, worker_id="w1", lazy=True)
    wait_until(lambda: getattr(other.state("j1"), "state", None) == "started", 30, "the lazy write")
    wait_until(lambda: store._flusher is None, 30, "the idle writer to end")
    store.record("j1", "pay", "critical", "succeeded", NOW + 1, worker_id="w1", lazy=True)
    wait_until(lambda: getattr(other.state("j1"), "state", None) == "succeeded", 30, "a second lazy write")


def test_lazy_events_of_a_process_that_exits_at_once_are_written(store: StateStore) -> None:
    import subprocess

    from tests.support.jobs import ROOT

    code = ("import sys; from ferrymq.jobs.db import Database; from ferrymq.jobs.state import StateStore;"
            "StateStore(Database(sys.argv[1], durable=False)).record('sent', 'pay', 'critical', 'enqueued',"
            f" {NOW}, lazy=True)")
    subprocess.run([sys.executable, "-c", code, store.db.url], cwd=ROOT, check=True, timeout=60,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    state = store.state("sent")
    assert state is not None and state.state == "enqueued"
