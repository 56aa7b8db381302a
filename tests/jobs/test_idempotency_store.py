"""The idempotency key tables on real databases: a SQLite file and a private PostgreSQL server."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.idempotency import COMPLETED_TABLE, ENQUEUE_TABLE, IdempotencyStore
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

WINDOW_MS = 60_000


@pytest.fixture
def store(any_db_url: str) -> IdempotencyStore:  # noqa: F811
    return IdempotencyStore(Database(any_db_url, durable=False))


def count(db: Database, table: str) -> int:
    with db.transaction() as tx:
        return int(tx.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def test_second_send_inside_the_window_is_refused_and_accepted_after_it(store: IdempotencyStore) -> None:
    clock = ManualClock()
    assert store.claim_enqueue("o-42", WINDOW_MS, clock.now_ms())
    clock.advance(WINDOW_MS - 1)
    assert not store.claim_enqueue("o-42", WINDOW_MS, clock.now_ms())
    assert store.claim_enqueue("o-43", WINDOW_MS, clock.now_ms())
    clock.advance(1)
    assert store.claim_enqueue("o-42", WINDOW_MS, clock.now_ms())
    assert not store.claim_enqueue("o-42", WINDOW_MS, clock.now_ms())


def test_completion_counts_only_when_its_transaction_commits(store: IdempotencyStore) -> None:
    clock = ManualClock()
    with pytest.raises(RuntimeError), store.db.transaction() as tx:
        assert store.claim_completion(tx, "k", WINDOW_MS, clock.now_ms())
        raise RuntimeError("the job failed")
    assert not store.is_completed("k", WINDOW_MS, clock.now_ms())
    with store.db.transaction() as tx:
        assert store.claim_completion(tx, "k", WINDOW_MS, clock.now_ms())
    assert store.is_completed("k", WINDOW_MS, clock.now_ms())
    with store.db.transaction() as tx:
        assert not store.claim_completion(tx, "k", WINDOW_MS, clock.now_ms())


def test_a_completed_key_is_forgotten_after_its_window(store: IdempotencyStore) -> None:
    clock = ManualClock()
    with store.db.transaction() as tx:
        store.claim_completion(tx, "k", WINDOW_MS, clock.now_ms())
    clock.advance(WINDOW_MS)
    assert not store.is_completed("k", WINDOW_MS, clock.now_ms())
    with store.db.transaction() as tx:
        assert store.claim_completion(tx, "k", WINDOW_MS, clock.now_ms())


def test_expire_deletes_only_keys_older_than_the_window(store: IdempotencyStore) -> None:
    clock = ManualClock()
    for key in ("old-1", "old-2"):
        store.claim_enqueue(key, WINDOW_MS, clock.now_ms())
        with store.db.transaction() as tx:
            store.claim_completion(tx, key, WINDOW_MS, clock.now_ms())
    clock.advance(WINDOW_MS)
    store.claim_enqueue("new", WINDOW_MS, clock.now_ms())
    with store.db.transaction() as tx:
        store.claim_completion(tx, "new", WINDOW_MS, clock.now_ms())
    assert store.expire(WINDOW_MS, clock.now_ms(), limit=1) == 2  # one per table per call
    assert store.expire(WINDOW_MS, clock.now_ms()) == 2
    assert store.expire(WINDOW_MS, clock.now_ms()) == 0
    assert count(store.db, ENQUEUE_TABLE) == 1 and count(store.db, COMPLETED_TABLE) == 1
    assert store.is_completed("new", WINDOW_MS, clock.now_ms())


def race(threads: int, body: Callable[[int], bool]) -> list[bool]:
    """``body(i)`` on ``threads`` threads released together; their results."""
    barrier = threading.Barrier(threads)
    results: list[bool] = [False] * threads
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = body(i)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors
    return results


def test_concurrent_sends_of_one_key_exactly_one_wins(any_db_url: str) -> None:  # noqa: F811
    IdempotencyStore(Database(any_db_url, durable=False))
    now = ManualClock().now_ms()
    for round_ in range(5):
        key = f"key-{round_}"

        def claim(i: int, key: str = key) -> bool:
            # Each thread its own Database object: its own connection, as separate processes have.
            return IdempotencyStore(Database(any_db_url, durable=False)).claim_enqueue(key, WINDOW_MS, now)

        assert race(8, claim).count(True) == 1


def test_concurrent_runs_of_one_key_commit_their_effect_once(any_db_url: str) -> None:  # noqa: F811
    """Two runs of the same job at once (a redelivery while the first still runs): the second
    waits for the first's transaction, sees the key completed, and rolls its effect back."""
    db = Database(any_db_url, durable=False)
    store = IdempotencyStore(db)
    db.create(["CREATE TABLE IF NOT EXISTS effects (run INTEGER NOT NULL)"])
    now = ManualClock().now_ms()
    ran = threading.Event()

    def run(i: int) -> bool:
        mine = Database(any_db_url, durable=False)
        with mine.transaction() as tx:
            tx.execute("INSERT INTO effects (run) VALUES (?)", (i,))
            won = store.claim_completion(tx, "job/id/1", WINDOW_MS, now)
            ran.set()
            if not won:
                raise _Lost
        return True

    results = race(2, lambda i: _swallow_lost(run, i))
    assert ran.is_set() and results.count(True) == 1
    assert count(db, "effects") == 1


class _Lost(Exception):
    pass


def _swallow_lost(run: Callable[[int], bool], i: int) -> bool:
    try:
        return run(i)
    except _Lost:
        return False
