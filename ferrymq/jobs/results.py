"""Job results, opt-in per job (``store_result=True``), kept for a time to live.

A result lives in the shared database so whoever sent the job, in any process, can read it by the
job's id. Only a job's final outcome is stored: its return value, or the error it died with — a
failed attempt that will be retried stores nothing, so a waiter never mistakes a retry for the end.
Expired rows are deleted by the writes themselves (at most once a minute per store), so no
sweeper process is needed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferrymq.clock import Clock
from ferrymq.jobs.db import Database
from ferrymq.jobs.errors import JobError
from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

log = logging.getLogger("ferrymq.jobs.results")

DEFAULT_TTL_MS = 86_400_000  # a day, as JobOptions.result_ttl_ms
PURGE_EVERY_MS = 60_000  # how often a store's writes also delete expired results
WAIT_POLL_MS = 50
SUCCEEDED, FAILED = "succeeded", "failed"

TABLES = (
    "CREATE TABLE IF NOT EXISTS ferrymq_results (job_id TEXT PRIMARY KEY, status TEXT NOT NULL,"
    " value TEXT, error TEXT, stored_ms {bigint} NOT NULL, expires_ms {bigint} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ferrymq_results_expiry ON ferrymq_results (expires_ms)",
)
_UPSERT = ("INSERT INTO ferrymq_results (job_id, status, value, error, stored_ms, expires_ms)"
           " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET status = excluded.status,"
           " value = excluded.value, error = excluded.error, stored_ms = excluded.stored_ms,"
           " expires_ms = excluded.expires_ms")
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class ResultMissing(JobError, LookupError):
    """No result for this job id: never stored, not stored yet, or expired."""


class ResultFailed(JobError):
    """The job died (out of attempts, or fatal); ``error`` is what it died of."""

    def __init__(self, job_id: str, error: str) -> None:
        super().__init__(f"job {job_id} failed: {error}")
        self.job_id, self.error = job_id, error


@dataclass(frozen=True, slots=True)
class Result:
    job_id: str
    status: str  # SUCCEEDED or FAILED
    value: Any
    error: str | None
    stored_ms: int
    expires_ms: int


class ResultStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._next_purge_ms = 0
        db.create(TABLES)

    def put(self, job_id: str, value: Any, ttl_ms: int, now_ms: int) -> None:
        """Store a job's return value; a value JSON cannot carry raises TypeError."""
        try:
            text = _dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"the result of job {job_id} is not JSON-serialisable: {exc}") from None
        self._write(job_id, SUCCEEDED, text, None, ttl_ms, now_ms)

    def put_error(self, job_id: str, error: str, ttl_ms: int, now_ms: int) -> None:
        """Store that a job died, and of what."""
        self._write(job_id, FAILED, None, error, ttl_ms, now_ms)

    def peek(self, job_id: str, now_ms: int) -> Result | None:
        """The stored result, or None when there is none (or it expired)."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT status, value, error, stored_ms, expires_ms FROM ferrymq_results"
                             " WHERE job_id = ? AND expires_ms > ?", (job_id, now_ms)).fetchone()
        if row is None:
            return None
        status, text, error, stored, expires = row
        return Result(job_id, status, None if text is None else json.loads(text), error, stored, expires)

    def get(self, job_id: str, now_ms: int) -> Any:
        """The job's return value; raises ResultMissing (none or expired) or ResultFailed (it died)."""
        result = self.peek(job_id, now_ms)
        if result is None:
            raise ResultMissing(f"no result for job {job_id} (not finished, not stored, or expired)")
        if result.status == FAILED:
            raise ResultFailed(job_id, result.error or "")
        return result.value

    def wait(self, job_id: str, timeout_ms: int, clock: Clock, poll_ms: int = WAIT_POLL_MS,
             sleep: Callable[[float], None] = time.sleep) -> Any:
        """``get`` once the result is there, polling every ``poll_ms``; ResultMissing after
        ``timeout_ms``. ``sleep`` is injectable so a test with a ManualClock can advance it instead."""
        deadline = clock.monotonic_ms() + timeout_ms
        while True:
            try:
                return self.get(job_id, clock.now_ms())
            except ResultMissing:
                left = deadline - clock.monotonic_ms()
                if left <= 0:
                    raise ResultMissing(f"no result for job {job_id} within {timeout_ms} ms") from None
                sleep(min(poll_ms, left) / 1000)

    def purge(self, now_ms: int) -> int:
        """Delete every expired result; how many went."""
        with self.db.transaction() as tx:
            return int(tx.execute("DELETE FROM ferrymq_results WHERE expires_ms <= ?", (now_ms,)).rowcount)

    def _write(self, job_id: str, status: str, text: str | None, error: str | None, ttl_ms: int,
               now_ms: int) -> None:
        if ttl_ms <= 0:
            raise ValueError(f"a result's time to live must be positive, not {ttl_ms} ms")
        with self.db.transaction() as tx:
            tx.execute(_UPSERT, (job_id, status, text, error, now_ms, now_ms + ttl_ms))
            if now_ms >= self._next_purge_ms:
                self._next_purge_ms = now_ms + PURGE_EVERY_MS
                tx.execute("DELETE FROM ferrymq_results WHERE expires_ms <= ?", (now_ms,))


class ResultsMiddleware(Middleware):
    """Stores the outcome of jobs defined with ``store_result=True`` for their ``result_ttl``: the
    return value when a run succeeds, the reason when the job goes to the dead letters."""

    def __init__(self, db: Database) -> None:
        self.store = ResultStore(db)

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        options = _options(ctx, message)
        if exception is not None or options is None or not options.store_result:
            return
        now_ms = ctx.clock.now_ms()
        try:
            self.store.put(message.id, result, options.result_ttl_ms, now_ms)
        except TypeError as exc:  # the job ran; its value cannot be kept: say so where the value would be
            log.warning("%s", exc)
            self.store.put_error(message.id, str(exc), options.result_ttl_ms, now_ms)

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        options = _options(ctx, message)
        if options is not None and options.store_result:
            self.store.put_error(message.id, reason, options.result_ttl_ms, ctx.clock.now_ms())


def _options(ctx: JobContext, message: JobMessage) -> Any:
    job = ctx.app.jobs.get(message.job)
    return None if job is None else job.options
