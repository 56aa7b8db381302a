"""The result store on a real SQLite file and a real PostgreSQL server: values, errors, expiry,
purge and waiting (ManualClock)."""

from __future__ import annotations

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.results import ResultFailed, ResultMissing, ResultStore
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

NOW = 1_700_000_000_000


@pytest.fixture
def store(any_db_url: str) -> ResultStore:  # noqa: F811
    return ResultStore(Database(any_db_url, durable=False))


def test_a_stored_value_reads_back_as_the_same_json_value(store: ResultStore) -> None:
    store.put("j1", {"total": 42, "items": ["a", "é"], "ok": True}, ttl_ms=60_000, now_ms=NOW)
    assert store.get("j1", NOW + 1) == {"total": 42, "items": ["a", "é"], "ok": True}
    store.put("j2", None, ttl_ms=60_000, now_ms=NOW)
    assert store.get("j2", NOW) is None  # a job returning None has a result: None


def test_a_result_expires_after_its_ttl_and_is_missing_then(store: ResultStore) -> None:
    store.put("j1", 1, ttl_ms=1_000, now_ms=NOW)
    assert store.get("j1", NOW + 999) == 1
    with pytest.raises(ResultMissing):
        store.get("j1", NOW + 1_000)
    with pytest.raises(ResultMissing):
        store.get("never-stored", NOW)


def test_a_dead_job_result_raises_its_error(store: ResultStore) -> None:
    store.put_error("j1", "ValueError: bad order", ttl_ms=60_000, now_ms=NOW)
    with pytest.raises(ResultFailed, match="bad order") as failed:
        store.get("j1", NOW)
    assert failed.value.error == "ValueError: bad order"
    peeked = store.peek("j1", NOW)
    assert peeked is not None and peeked.status == "failed"


def test_a_later_result_replaces_an_earlier_one(store: ResultStore) -> None:
    store.put_error("j1", "boom", ttl_ms=60_000, now_ms=NOW)
    store.put("j1", "done", ttl_ms=60_000, now_ms=NOW + 5)
    assert store.get("j1", NOW + 5) == "done"


def test_expired_rows_are_deleted_by_later_writes_and_by_purge(store: ResultStore) -> None:
    store.put("old", 1, ttl_ms=1_000, now_ms=NOW)
    store.put("new", 2, ttl_ms=600_000, now_ms=NOW + 61_000)  # a write after a minute purges too
    with store.db.transaction() as tx:
        assert [r[0] for r in tx.execute("SELECT job_id FROM ferrymq_results").fetchall()] == ["new"]
    assert store.purge(NOW + 661_000) == 1


def test_an_unserialisable_value_fails_with_one_clear_error(store: ResultStore) -> None:
    with pytest.raises(TypeError, match="result of job j1 is not JSON-serialisable"):
        store.put("j1", object(), ttl_ms=1_000, now_ms=NOW)
    with pytest.raises(ValueError, match="time to live"):
        store.put("j1", 1, ttl_ms=0, now_ms=NOW)


def test_wait_polls_until_the_result_arrives(store: ResultStore) -> None:
    clock, polls = ManualClock(NOW), []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        clock.advance(int(seconds * 1000))
        if len(polls) == 3:
            store.put("j1", "ready", ttl_ms=60_000, now_ms=clock.now_ms())

    assert store.wait("j1", timeout_ms=10_000, clock=clock, poll_ms=100, sleep=sleep) == "ready"
    assert polls == [0.1, 0.1, 0.1]


def test_wait_gives_up_at_its_timeout(store: ResultStore) -> None:
    clock = ManualClock(NOW)
    with pytest.raises(ResultMissing, match="within 250 ms"):
        store.wait("j1", timeout_ms=250, clock=clock, poll_ms=100,
                   sleep=lambda s: clock.advance(int(s * 1000)))
    assert clock.now_ms() == NOW + 250
