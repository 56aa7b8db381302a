"""Exactly-once effects: idempotency keys, deduplicated at enqueue and at execution.

A broker can only deliver at least once: a worker that dies after running a job but before its
ack gets the job again. So a job that must not repeat its effects records its key as completed in
the same database transaction as the effects themselves (``ctx.tx``): either both commit, or
neither does, and a redelivery finds the key and is acknowledged without running.

Two tables, one row per key, both in the job system's shared database:

- ``ferrymq_enqueue_keys``: a send whose key was claimed less than a window ago is dropped. This is
  a cheap filter against double-clicks and two schedulers, not the guarantee: the claim commits
  before the publish, and a publish that then fails leaves the key claimed for one window.
- ``ferrymq_completed_keys``: the guarantee. Claimed inside the job's transaction, before the job
  runs, so on PostgreSQL a concurrent duplicate blocks on the uncommitted row and then sees it
  completed; on SQLite BEGIN IMMEDIATE serialises the two outright.

A key is claimed by ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <expired> RETURNING``: one
statement, the same on both engines, that inserts a new key, takes over an expired one, or
returns nothing when a live claim exists — no unique-violation exception to translate.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ferrymq.clock import Clock
from ferrymq.jobs.db import Database, Tx
from ferrymq.jobs.errors import Skip
from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

ENQUEUE_TABLE = "ferrymq_enqueue_keys"
COMPLETED_TABLE = "ferrymq_completed_keys"
DEFAULT_WINDOW_MS = 86_400_000  # a completed key is remembered a day: longer than any redelivery
CLEANUP_INTERVAL_MS = 60_000  # expired keys are deleted at most this often per process
CLEANUP_BATCH_MAX = 10_000  # rows deleted per table per cleanup: a cleanup never holds a lock long
ALREADY_COMPLETED = "already completed"
DUPLICATE_SEND = "duplicate idempotency key within the enqueue window"
log = logging.getLogger("ferrymq.jobs.idempotency")

_DDL = [f"CREATE TABLE IF NOT EXISTS {table} (idem_key TEXT PRIMARY KEY, at_ms {{bigint}} NOT NULL)"
        for table in (ENQUEUE_TABLE, COMPLETED_TABLE)] + [
    f"CREATE INDEX IF NOT EXISTS {table}_at ON {table} (at_ms)" for table in (ENQUEUE_TABLE, COMPLETED_TABLE)]


def claim_row(tx: Tx, table: str, key: str, window_ms: int, now_ms: int) -> bool:
    """Claim ``key`` in ``table`` at ``now_ms`` inside ``tx``: True when it was free or its claim
    is at least ``window_ms`` old; False when a claim inside the window exists (or a concurrent
    transaction that claimed it commits first)."""
    row = tx.execute(
        f"INSERT INTO {table} (idem_key, at_ms) VALUES (?, ?) ON CONFLICT (idem_key) DO UPDATE "
        f"SET at_ms = excluded.at_ms WHERE {table}.at_ms <= ? RETURNING idem_key",
        (key, now_ms, now_ms - window_ms)).fetchone()
    return row is not None


class IdempotencyStore:
    """The two key tables on a ``Database`` (created on first use)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(_DDL)

    def claim_enqueue(self, key: str, window_ms: int, now_ms: int) -> bool:
        """True for the first send of ``key`` in ``window_ms``: the caller publishes; False: drop it."""
        with self.db.transaction() as tx:
            return claim_row(tx, ENQUEUE_TABLE, key, window_ms, now_ms)

    def is_completed(self, key: str, window_ms: int, now_ms: int) -> bool:
        """Whether a run of ``key`` committed less than ``window_ms`` ago (a read, no lock)."""
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT at_ms FROM {COMPLETED_TABLE} WHERE idem_key = ?", (key,)).fetchone()
        return row is not None and row[0] > now_ms - window_ms

    def claim_completion(self, tx: Tx, key: str, window_ms: int, now_ms: int) -> bool:
        """Record ``key`` completed inside the job's transaction ``tx``; False means another run
        already completed it (roll back and skip)."""
        return claim_row(tx, COMPLETED_TABLE, key, window_ms, now_ms)

    def confirm_completion(self, tx: Tx, key: str) -> None:
        """Before commit: the claim is still in ``tx``. A job that swallowed a database error has
        left a PostgreSQL transaction aborted, whose COMMIT silently rolls back — the delivery
        would be acknowledged with nothing committed. The statement here raises instead (and
        a claim a job's own ROLLBACK undid raises too), so the job fails and is retried."""
        lost = f"the job's transaction lost its idempotency key {key!r}; nothing was committed"
        try:
            row = tx.execute(f"SELECT 1 FROM {COMPLETED_TABLE} WHERE idem_key = ?", (key,)).fetchone()
        except Exception as exc:  # PostgreSQL: "current transaction is aborted"
            raise TransactionLost(f"{lost}: {exc}") from exc
        if row is None:
            raise TransactionLost(lost)

    def expire(self, window_ms: int, now_ms: int, *, enqueue_window_ms: int | None = None,
               limit: int = CLEANUP_BATCH_MAX) -> int:
        """Delete up to ``limit`` expired keys per table; the number deleted. Expired keys already
        count as free, so this only reclaims space."""
        deleted = 0
        for table, window in ((COMPLETED_TABLE, window_ms), (ENQUEUE_TABLE, enqueue_window_ms or window_ms)):
            with self.db.transaction() as tx:
                cur = tx.execute(f"DELETE FROM {table} WHERE idem_key IN (SELECT idem_key FROM {table} "
                                 f"WHERE at_ms <= ? LIMIT ?)", (now_ms - window, limit))
                deleted += max(cur.rowcount, 0)
        return deleted


def execution_key(app: Any, message: JobMessage) -> str | None:
    """The key a run is deduplicated by: the message's key, or for a job declared ``idempotent``
    its message id (a retry or a redelivery keeps the id). Keys are scoped by job name, so two
    jobs may use the same business key."""
    if message.key is not None:
        return f"{message.job}/key/{message.key}"
    jobs = getattr(app, "jobs", None) or {}
    job = jobs.get(message.job)
    if job is not None and job.options.idempotent:
        return f"{message.job}/id/{message.id}"
    return None


class TransactionLost(RuntimeError):
    """The job's transaction can no longer commit its key (a swallowed error, a ROLLBACK)."""


class _AlreadyCompleted(Exception):
    """A control-flow signal: the key completed in another run; never escapes ``wrap``."""


class IdempotencyMiddleware(Middleware):
    """Enqueue dedup (``before_enqueue``) and execution dedup (``before_process`` + ``wrap``).

    ``wrap`` runs every keyed job inside one transaction on ``db`` and sets ``ctx.tx`` to it:
    effects written through ``ctx.tx`` (or ``current.tx``) commit together with the completed
    key, so they happen exactly once. Effects anywhere else (an HTTP call, another database)
    are at-least-once, as without this middleware."""

    def __init__(self, db: Database, *, window_ms: int = DEFAULT_WINDOW_MS,
                 enqueue_window_ms: int | None = None) -> None:
        self.store = IdempotencyStore(db)
        self.db = db
        self.window_ms = window_ms
        self.enqueue_window_ms = window_ms if enqueue_window_ms is None else enqueue_window_ms
        self._cleanup_due_ms: int | None = None
        self._cleanup_lock = threading.Lock()

    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        """Drop a first-attempt send whose key was sent inside the window. Retries (attempt > 0)
        and outbox relays (deduplicated by their own row) are never dropped."""
        if message.key is None or message.attempt > 0 or "outbox" in message.extra:
            return
        if not self.store.claim_enqueue(f"{message.job}/key/{message.key}", self.enqueue_window_ms,
                                        app.clock.now_ms()):
            raise Skip(DUPLICATE_SEND)

    def before_process(self, ctx: JobContext, message: JobMessage) -> None:
        self._maybe_cleanup(ctx.clock)
        key = execution_key(ctx.app, message)
        if key is not None and self.store.is_completed(key, self.window_ms, ctx.clock.now_ms()):
            raise Skip(ALREADY_COMPLETED)

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """Run the job in a transaction that also records its key. A key another run completed
        meanwhile rolls this one back: the job does not run and the delivery counts as done
        (returning, not raising, so the worker acknowledges it instead of retrying it)."""
        key = execution_key(ctx.app, message)
        if key is None:
            return call()
        try:
            with self.db.transaction() as tx:
                if not self.store.claim_completion(tx, key, self.window_ms, ctx.clock.now_ms()):
                    raise _AlreadyCompleted
                ctx.tx = tx
                try:
                    result = call()
                finally:
                    ctx.tx = None
                self.store.confirm_completion(tx, key)
                return result
        except _AlreadyCompleted:
            log.info("job %s %s: completed by another run; not run again", message.job, message.id)
            return None

    def _maybe_cleanup(self, clock: Clock) -> None:
        """Delete expired keys now and then; a cleanup that fails is logged, never fails a job."""
        now = clock.monotonic_ms()
        if self._cleanup_due_ms is not None and now < self._cleanup_due_ms:
            return
        if not self._cleanup_lock.acquire(blocking=False):
            return
        try:
            self._cleanup_due_ms = now + CLEANUP_INTERVAL_MS
            self.store.expire(self.window_ms, clock.now_ms(), enqueue_window_ms=self.enqueue_window_ms)
        except Exception:
            log.exception("idempotency key cleanup failed; retrying in %d ms", CLEANUP_INTERVAL_MS)
        finally:
            self._cleanup_lock.release()
