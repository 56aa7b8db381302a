"""IdempotencyMiddleware's hooks on real databases (a SQLite file, a private PostgreSQL server),
called as the worker calls them; the end-to-end test drives them through a real worker."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.errors import Skip
from ferrymq.jobs.idempotency import ALREADY_COMPLETED, DUPLICATE_SEND, IdempotencyMiddleware, TransactionLost
from ferrymq.jobs.message import JobMessage
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401


@pytest.fixture
def db(any_db_url: str) -> Database:  # noqa: F811
    database = Database(any_db_url, durable=False)
    database.create(["CREATE TABLE IF NOT EXISTS effects (job_id TEXT NOT NULL)"])
    return database


def app_with(*idempotent_jobs: str) -> Any:
    jobs = {name: SimpleNamespace(options=SimpleNamespace(idempotent=True)) for name in idempotent_jobs}
    return SimpleNamespace(jobs=jobs, clock=ManualClock())


def context(app: Any, message: JobMessage) -> Any:
    return SimpleNamespace(app=app, clock=app.clock, tx=None, message=message, worker_id="w1")


def deliver(mw: IdempotencyMiddleware, app: Any, message: JobMessage, fail: bool = False) -> str:
    """One delivery as the worker runs it: "ran", or the Skip reason."""
    ctx = context(app, message)

    def job() -> str:
        if ctx.tx is not None:
            ctx.tx.execute("INSERT INTO effects (job_id) VALUES (?)", (message.id,))
        if fail:
            raise RuntimeError("the job failed after writing its effect")
        return "ran"

    try:
        mw.before_process(ctx, message)
        return str(mw.wrap(ctx, message, job))
    except Skip as skip:
        return skip.reason


def effects(db: Database) -> int:
    with db.transaction() as tx:
        return int(tx.execute("SELECT COUNT(*) FROM effects").fetchone()[0])


def test_a_redelivered_keyed_job_is_acknowledged_without_running_again(db: Database) -> None:
    app, mw = app_with(), IdempotencyMiddleware(db)
    message = JobMessage("m1", "charge", "default", ["o-1"], key="o-1")
    assert deliver(mw, app, message) == "ran"
    message.extra["redelivered"] = True
    assert deliver(mw, app, message) == ALREADY_COMPLETED
    assert effects(db) == 1


def test_a_failed_run_commits_neither_effect_nor_key_so_the_retry_runs(db: Database) -> None:
    app, mw = app_with(), IdempotencyMiddleware(db)
    message = JobMessage("m1", "charge", "default", key="o-1")
    with pytest.raises(RuntimeError):
        deliver(mw, app, message, fail=True)
    assert effects(db) == 0
    assert deliver(mw, app, message.retried(1, {})) == "ran"
    assert effects(db) == 1


def test_a_duplicate_that_passed_before_process_is_rolled_back_in_wrap(db: Database) -> None:
    """The race before_process cannot see: the first run completes between the duplicate's check
    and its transaction. The duplicate's claim fails inside its transaction: it does not run."""
    app, mw = app_with(), IdempotencyMiddleware(db)
    message = JobMessage("m1", "charge", "default", key="o-1")
    ctx = context(app, message)
    mw.before_process(ctx, message)  # the duplicate passes the check...
    assert deliver(mw, app, message) == "ran"  # ...then the first run commits
    ran: list[bool] = []

    def duplicate() -> None:
        ran.append(True)
        ctx.tx.execute("INSERT INTO effects (job_id) VALUES ('dup')")

    assert mw.wrap(ctx, message, duplicate) is None  # done: acknowledged, not retried
    assert ran == [] and effects(db) == 1


def test_an_idempotent_job_is_keyed_by_message_id_and_others_run_outside_a_transaction(db: Database) -> None:
    app, mw = app_with("charge"), IdempotencyMiddleware(db)
    first, second = JobMessage("m1", "charge", "default"), JobMessage("m2", "charge", "default")
    assert [deliver(mw, app, m) for m in (first, first, second)] == ["ran", ALREADY_COMPLETED, "ran"]
    plain = JobMessage("m3", "notify", "default")
    seen: list[Any] = []
    ctx = context(app, plain)
    assert mw.wrap(ctx, plain, lambda: seen.append(ctx.tx)) is None
    assert seen == [None] and deliver(mw, app, plain) == "ran" and deliver(mw, app, plain) == "ran"
    assert effects(db) == 2


def test_keys_are_scoped_by_job_and_expire_after_the_window(db: Database) -> None:
    app, mw = app_with(), IdempotencyMiddleware(db, window_ms=60_000)
    charge, refund = JobMessage("m1", "charge", "q", key="o-1"), JobMessage("m2", "refund", "q", key="o-1")
    assert deliver(mw, app, charge) == "ran" and deliver(mw, app, refund) == "ran"
    app.clock.advance(60_000)
    assert deliver(mw, app, charge) == "ran"
    assert effects(db) == 3


def test_a_second_keyed_send_inside_the_window_is_dropped_but_retries_and_outbox_pass(db: Database) -> None:
    app, mw = app_with(), IdempotencyMiddleware(db, enqueue_window_ms=60_000)
    message = JobMessage("m1", "charge", "q", key="o-1")
    mw.before_enqueue(app, message)
    with pytest.raises(Skip, match=DUPLICATE_SEND):
        mw.before_enqueue(app, JobMessage("m2", "charge", "q", key="o-1"))
    mw.before_enqueue(app, message.retried(1, {}))
    mw.before_enqueue(app, JobMessage("m3", "charge", "q", key="o-1", extra={"outbox": 7}))
    mw.before_enqueue(app, JobMessage("m4", "charge", "q"))  # no key: nothing to deduplicate
    app.clock.advance(60_000)
    mw.before_enqueue(app, JobMessage("m5", "charge", "q", key="o-1"))


def test_expired_keys_are_cleaned_up_as_jobs_run(db: Database) -> None:
    app, mw = app_with(), IdempotencyMiddleware(db, window_ms=1_000)
    for i in range(3):
        assert deliver(mw, app, JobMessage(f"m{i}", "charge", "q", key=f"k{i}")) == "ran"
    app.clock.advance(120_000)  # past the window and the cleanup interval
    deliver(mw, app, JobMessage("m9", "charge", "q", key="k9"))
    with db.transaction() as tx:
        keys = [r[0] for r in tx.execute("SELECT idem_key FROM ferrymq_completed_keys").fetchall()]
    assert keys == ["charge/key/k9"]


def test_a_job_that_swallows_a_database_error_is_never_acknowledged_with_nothing_committed(
        db: Database) -> None:
    """On PostgreSQL a swallowed error aborts the transaction and its COMMIT silently rolls back;
    the middleware must fail the run rather than let the worker ack it. (SQLite undoes only the
    failed statement, so there the rest of the job commits, key included.)"""
    db.create(["CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY)"])
    app, mw = app_with(), IdempotencyMiddleware(db)
    message = JobMessage("m1", "charge", "q", key="o-1")
    ctx = context(app, message)

    def job() -> str:
        ctx.tx.execute("INSERT INTO effects (job_id) VALUES ('m1')")
        ctx.tx.execute("INSERT INTO ledger (id) VALUES (1)")
        try:
            ctx.tx.execute("INSERT INTO ledger (id) VALUES (1)")
        except Exception:
            pass  # "handled"
        return "ran"

    if db.dialect == "postgresql":
        with pytest.raises(TransactionLost):
            mw.wrap(ctx, message, job)
    else:
        assert mw.wrap(ctx, message, job) == "ran"
    completed = mw.store.is_completed("charge/key/o-1", mw.window_ms, app.clock.now_ms())
    assert completed == (effects(db) == 1)  # effects and key together, or neither
    assert completed == (db.dialect == "sqlite")
