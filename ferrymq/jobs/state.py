"""Job state and audit trail: every step of every job, with when, where and why, in the database.

Two tables: an append-only log of events (enqueued, started, retried with its reason and delay,
succeeded, failed with its error, dead, replayed, cancelled, skipped) and one row per job holding
its current state, progress and whether someone asked to cancel it. The dashboard and the CLI
read both; the worker asks one question per job (was it cancelled?) and writes the rest.

Writes are group-committed: a thread adds its event to a shared batch and, when no other thread is
writing, writes every pending event in one transaction; a thread that finds a write under way
leaves its event to that writer and returns at once. One thread alone pays one transaction per
event; fifty threads share one transaction among all events that arrived during the last one.
``flush()`` (called by every read) waits for pending events, so a process reads its own writes.
The store is opt-in: a job costs two to three event writes and one read of its cancel flag.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ferrymq.jobs.context import current
from ferrymq.jobs.db import Database
from ferrymq.jobs.errors import Skip
from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

log = logging.getLogger("ferrymq.jobs.state")

STATES = ("enqueued", "started", "retried", "succeeded", "failed", "dead", "replayed", "cancelled", "skipped")
FINAL = ("succeeded", "dead", "cancelled", "skipped")  # 'failed' is not final: a retry may follow
LIST_LIMIT_MAX = 1_000
LAZY_FLUSH_S = 0.1  # a lazy event waits at most this long for a write to share
LAZY_BATCH_WAKE = 1_000  # ...or until this many are pending
LAZY_IDLE_S = 10.0  # the background writer ends after this long with nothing to write
CANCEL_POLL_MS = 1_000  # how stale a worker's view of cancellations of queued jobs may be
CANCEL_SKEW_MS = 5_000  # cancellations stamped by a clock this far behind the worker's are still seen

_EVENT_COLUMNS = "job_id, job, queue, state, at_ms, worker_id, attempt, detail, delay_ms"
_STATE_COLUMNS = ("job_id, job, queue, state, attempt, worker_id, updated_ms, detail, delay_ms, progress,"
                  " note, cancel_requested")


def _tables(db: Database) -> list[str]:
    seq = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    return [
        f"CREATE TABLE IF NOT EXISTS ferrymq_job_events (seq {seq}, job_id TEXT NOT NULL, job TEXT NOT NULL,"
        " queue TEXT NOT NULL, state TEXT NOT NULL, at_ms {bigint} NOT NULL, worker_id TEXT NOT NULL,"
        " attempt INTEGER NOT NULL, detail TEXT NOT NULL, delay_ms {bigint})",
        "CREATE INDEX IF NOT EXISTS ferrymq_job_events_job ON ferrymq_job_events (job_id, seq)",
        "CREATE TABLE IF NOT EXISTS ferrymq_job_state (job_id TEXT PRIMARY KEY, job TEXT NOT NULL,"
        " queue TEXT NOT NULL, state TEXT NOT NULL, attempt INTEGER NOT NULL, worker_id TEXT NOT NULL,"
        " updated_ms {bigint} NOT NULL, detail TEXT NOT NULL, delay_ms {bigint}, progress REAL, note TEXT,"
        " cancel_requested INTEGER NOT NULL DEFAULT 0, cancelled_ms {bigint})",
        "CREATE INDEX IF NOT EXISTS ferrymq_job_state_by_state ON ferrymq_job_state (state, updated_ms)",
        "CREATE INDEX IF NOT EXISTS ferrymq_job_state_by_job ON ferrymq_job_state (job, updated_ms)",
        "CREATE INDEX IF NOT EXISTS ferrymq_job_state_by_time ON ferrymq_job_state (updated_ms)",
        "CREATE INDEX IF NOT EXISTS ferrymq_job_state_cancels ON ferrymq_job_state (cancelled_ms)",
    ]


# The current state follows the latest attempt's newest event, except that 'enqueued' never
# overwrites a later state (a producer's write can land after the worker's 'started') and a
# cancellation stays until the job ends one way or another. 'replayed' and 'cancelled' always
# apply: a replay starts the job's life again, at whatever attempt the replayed message carries.
_UPSERT_STATE = (
    "INSERT INTO ferrymq_job_state (job_id, job, queue, state, attempt, worker_id, updated_ms, detail,"
    " delay_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job_id) DO UPDATE SET job = excluded.job,"
    " queue = excluded.queue, state = excluded.state, attempt = excluded.attempt,"
    " worker_id = excluded.worker_id, updated_ms = excluded.updated_ms, detail = excluded.detail,"
    " delay_ms = excluded.delay_ms, cancel_requested = CASE WHEN excluded.state = 'replayed' THEN 0"
    " WHEN excluded.state = 'cancelled' THEN 1 ELSE ferrymq_job_state.cancel_requested END,"
    " cancelled_ms = CASE WHEN excluded.state = 'replayed' THEN NULL ELSE ferrymq_job_state.cancelled_ms END"
    " WHERE excluded.state IN ('replayed', 'cancelled') OR ((excluded.attempt > ferrymq_job_state.attempt"
    " OR (excluded.attempt = ferrymq_job_state.attempt"
    " AND excluded.updated_ms >= ferrymq_job_state.updated_ms))"
    " AND (excluded.state <> 'enqueued' OR ferrymq_job_state.state = 'enqueued')"
    " AND (ferrymq_job_state.state <> 'cancelled' OR excluded.state IN ('succeeded', 'failed', 'dead')))"
)
_CANCEL_STATE = (
    "INSERT INTO ferrymq_job_state (job_id, job, queue, state, attempt, worker_id, updated_ms, detail,"
    " cancel_requested, cancelled_ms) VALUES (?, ?, ?, 'cancelled', ?, '', ?, ?, 1, ?) ON CONFLICT (job_id)"
    " DO UPDATE SET state = 'cancelled', cancel_requested = 1, detail = excluded.detail,"
    " cancelled_ms = excluded.cancelled_ms,"
    " updated_ms = CASE WHEN ferrymq_job_state.updated_ms > ? THEN ferrymq_job_state.updated_ms ELSE ? END"
)
_INSERT_EVENT = f"INSERT INTO ferrymq_job_events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_PROGRESS = "UPDATE ferrymq_job_state SET progress = ?, note = ? WHERE job_id = ?"


@dataclass(frozen=True, slots=True)
class JobEvent:
    job_id: str
    job: str
    queue: str
    state: str
    at_ms: int
    worker_id: str
    attempt: int
    detail: str
    delay_ms: int | None


@dataclass(frozen=True, slots=True)
class JobState:
    job_id: str
    job: str
    queue: str
    state: str
    attempt: int
    worker_id: str
    updated_ms: int
    detail: str
    delay_ms: int | None
    progress: float | None
    note: str | None
    cancel_requested: bool


class StateStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(_tables(db))
        self._cond = threading.Condition(threading.Lock())
        self._events: list[tuple[Any, ...]] = []
        self._progress: list[tuple[Any, ...]] = []
        self._writing = False
        self._flusher: threading.Thread | None = None
        self._wake = threading.Event()
        atexit.register(_flush_at_exit, weakref.ref(self))  # a sender that exits keeps its events
        self.batches_written = 0  # transactions spent on events and progress (events / batches = sharing)

    # --- writes --------------------------------------------------------------------------------

    def record(self, job_id: str, job: str, queue: str, state: str, at_ms: int, worker_id: str = "",
               attempt: int = 0, detail: str = "", delay_ms: int | None = None, lazy: bool = False) -> None:
        """Add one event to the trail (and move the job's current state): group-committed. A
        ``lazy`` event does not start a write: it goes with the next one, within LAZY_FLUSH_S."""
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}: one of {', '.join(STATES)}")
        event = (job_id, job, queue, state, at_ms, worker_id, attempt, detail, delay_ms)
        if lazy:
            self._defer(event)
        else:
            self._submit(event)

    def progress(self, job_id: str, fraction: float, note: str, now_ms: int) -> None:
        """How far a running job is (0..1) and what it is doing. Always lazy: it is called from
        inside the job, which may hold a write transaction of its own (exactly-once effects), so
        this thread must not start another."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress is a fraction 0..1, not {fraction}")
        self._defer((float(fraction), note, job_id), progress=True)

    def flush(self) -> None:
        """Return once every event recorded so far in this process is committed."""
        with self._cond:
            while self._writing:
                self._cond.wait()
            if not (self._events or self._progress):
                return
            self._writing = True
        self._drain()

    def cancel(self, job_id: str, now_ms: int, reason: str = "") -> bool:
        """Ask for a job to be cancelled: a queued job is skipped when it reaches a worker, a running
        one sees ``is_cancelled``. False when the job had already finished (nothing to cancel).
        A job id the store has not seen yet is marked too, so the job is skipped when it arrives."""
        self.flush()
        detail = reason or "cancel requested"
        with self.db.transaction() as tx:
            row = tx.execute("SELECT job, queue, state, attempt FROM ferrymq_job_state WHERE job_id = ?",
                             (job_id,)).fetchone()
            if row is not None and row[2] in FINAL:
                return False
            job, queue, _, attempt = row if row is not None else ("", "", "", 0)
            tx.execute(_CANCEL_STATE, (job_id, job, queue, attempt, now_ms, detail, now_ms, now_ms, now_ms))
            tx.execute(_INSERT_EVENT, (job_id, job, queue, "cancelled", now_ms, "", attempt, detail, None))
        return True

    def purge(self, before_ms: int) -> int:
        """Forget finished jobs last updated before ``before_ms`` (their events too); how many."""
        self.flush()
        marks = ", ".join("?" * len(FINAL))
        where = f"updated_ms < ? AND state IN ({marks})"
        with self.db.transaction() as tx:
            tx.execute(f"DELETE FROM ferrymq_job_events WHERE job_id IN (SELECT job_id FROM ferrymq_job_state"
                       f" WHERE {where})", (before_ms, *FINAL))
            cur = tx.execute(f"DELETE FROM ferrymq_job_state WHERE {where}", (before_ms, *FINAL))
            return int(cur.rowcount)

    # --- reads ---------------------------------------------------------------------------------

    def is_cancelled(self, job_id: str) -> bool:
        """Whether someone asked to cancel this job (one indexed read; the worker's per-job cost)."""
        with self.db.transaction() as tx:
            row = tx.execute("SELECT cancel_requested FROM ferrymq_job_state WHERE job_id = ?",
                             (job_id,)).fetchone()
        return bool(row and row[0])

    def cancelled_since(self, since_ms: int) -> set[str]:
        """Jobs whose cancellation was asked at or after ``since_ms`` (a worker's periodic poll)."""
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT job_id FROM ferrymq_job_state WHERE cancelled_ms >= ?"
                              " AND cancel_requested = 1", (since_ms,)).fetchall()
        return {row[0] for row in rows}

    def cancelled_among(self, job_ids: Sequence[str]) -> set[str]:
        """Which of these (a worker's running jobs) were asked to cancel: one query for them all."""
        if not job_ids:
            return set()
        marks = ", ".join("?" * len(job_ids))
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT job_id FROM ferrymq_job_state WHERE cancel_requested = 1"
                              f" AND job_id IN ({marks})", tuple(job_ids)).fetchall()
        return {row[0] for row in rows}

    def history(self, job_id: str) -> list[JobEvent]:
        """Every event of one job in the order of its life: by attempt, then as written. (The
        worker publishes a retry before it records 'retried', so the next attempt's 'started'
        can be written first; each replay starts a new life.)"""
        self.flush()
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT {_EVENT_COLUMNS} FROM ferrymq_job_events WHERE job_id = ?"
                              " ORDER BY seq", (job_id,)).fetchall()
        events, life, keys = [JobEvent(*row) for row in rows], 0, []
        for seq, event in enumerate(events):
            life += event.state == "replayed"
            keys.append((life, event.attempt, seq))
        return [event for _, event in sorted(zip(keys, events), key=lambda pair: pair[0])]

    def state(self, job_id: str) -> JobState | None:
        """The job's current state, or None if the store never heard of it."""
        self.flush()
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT {_STATE_COLUMNS} FROM ferrymq_job_state WHERE job_id = ?",
                             (job_id,)).fetchone()
        return None if row is None else _job_state(row)

    def list_jobs(self, state: str | None = None, job: str | None = None, limit: int = 100) -> list[JobState]:
        """The most recently updated jobs, newest first, optionally in one state and of one job name."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown job state {state!r}: one of {', '.join(STATES)}")
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit must be 1..{LIST_LIMIT_MAX}, not {limit}")
        self.flush()
        where, params = _filters(state, job)
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT {_STATE_COLUMNS} FROM ferrymq_job_state{where}"
                              " ORDER BY updated_ms DESC LIMIT ?", (*params, limit)).fetchall()
        return [_job_state(row) for row in rows]

    def counts(self, job: str | None = None) -> dict[str, int]:
        """Jobs per current state (every state present, zeros included) for the dashboard."""
        self.flush()
        where, params = _filters(None, job)
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT state, COUNT(*) FROM ferrymq_job_state{where} GROUP BY state",
                              params).fetchall()
        return {name: 0 for name in STATES} | {row[0]: int(row[1]) for row in rows}

    def counts_by_job(self) -> dict[str, dict[str, int]]:
        """Jobs per current state for every job name (the dashboard's Jobs page): one query."""
        self.flush()
        with self.db.transaction() as tx:
            rows = tx.execute("SELECT job, state, COUNT(*) FROM ferrymq_job_state GROUP BY job, state"
                              " ORDER BY job").fetchall()
        out: dict[str, dict[str, int]] = {}
        for job, state, n in rows:
            out.setdefault(job, dict.fromkeys(STATES, 0))[state] = int(n)
        return out

    # --- group commit --------------------------------------------------------------------------

    def _submit(self, item: tuple[Any, ...]) -> None:
        """Add an event; write it now unless a writer is at work (it takes the item next). The list
        is chosen under the lock: the writer swaps it for a fresh one when it takes a batch."""
        with self._cond:
            self._events.append(item)
            if self._writing:
                return  # the thread writing now takes this item in its next batch
            self._writing = True
        self._drain()

    def _defer(self, item: tuple[Any, ...], progress: bool = False) -> None:
        with self._cond:
            pending = self._progress if progress else self._events
            pending.append(item)
            if len(pending) >= LAZY_BATCH_WAKE:
                self._wake.set()  # a busy worker: write now rather than let the batch grow
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_lazily, name="ferrymq-jobs-state",
                                                 daemon=True)
                self._flusher.start()

    def _flush_lazily(self) -> None:
        """Bounds how long a lazy event waits when no other write comes along; ends after
        LAZY_IDLE_S with nothing to write (the next lazy event starts another)."""
        idle_ticks = 0
        while True:
            self._wake.wait(LAZY_FLUSH_S)
            self._wake.clear()
            with self._cond:
                pending = bool(self._events or self._progress)
                if not pending and idle_ticks * LAZY_FLUSH_S >= LAZY_IDLE_S:
                    self._flusher = None
                    return
            idle_ticks = 0 if pending else idle_ticks + 1
            if pending:
                try:
                    self.flush()
                except Exception:  # the batch is lost; the trail must not stop the worker
                    log.exception("job state: a batch of events could not be written")

    def _drain(self) -> None:
        """Write batches until nothing is pending; this thread holds the writer's role meanwhile
        and gives it up in the same locked step that finds nothing left (else an event added in
        between would wait for a writer that is gone)."""
        while True:
            with self._cond:
                events, self._events = self._events, []
                progress, self._progress = self._progress, []
                if not (events or progress):
                    self._writing = False
                    self._cond.notify_all()
                    return
            try:
                self._write(events, progress)
            except BaseException:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
                raise

    def _write(self, events: list[tuple[Any, ...]], progress: list[tuple[Any, ...]]) -> None:
        self.batches_written += 1
        with self.db.transaction() as tx:
            if events:
                tx.executemany(_INSERT_EVENT, events)
                tx.executemany(_UPSERT_STATE, [(e[0], e[1], e[2], e[3], e[6], e[5], e[4], e[7], e[8])
                                               for e in events])
            if progress:
                tx.executemany(_PROGRESS, progress)


class StateMiddleware(Middleware):
    """Records every job's life in a StateStore and skips jobs cancelled before they ran.

    'started' is written when the job is about to be called (in ``wrap``), not in before_process,
    so a job a later middleware skips or defers (a rate limit) is never shown as started; it is
    lazy (it shares the job's next write). Put this middleware first, so a cancelled job is skipped
    before any other middleware spends on it.

    ``lazy`` (the default): events are written by one background writer, in batches, at most
    LAZY_FLUSH_S after they happen, so neither a send nor a job's path waits on the database; a
    process that exits flushes them, one killed with SIGKILL loses those of its last LAZY_FLUSH_S.
    ``lazy=False`` writes each before its hook returns (group-committed across threads).

    Cancellations are read once per ``cancel_poll_ms`` for the whole process, not once per job: a
    job cancelled less than that before a worker takes it may still start (and then sees
    ``ctx.cancelled`` at the worker's next poll of its running jobs). ``cancel_poll_ms=0`` asks
    the store about every job."""

    def __init__(self, db: Database, cancel_poll_ms: int = CANCEL_POLL_MS, lazy: bool = True) -> None:
        self.store = StateStore(db)
        self.cancel_poll_ms = cancel_poll_ms
        self.lazy = lazy
        self._cancelled: set[str] = set()  # cancellations seen by this process's polls
        self._poll_lock = threading.Lock()
        self._next_poll_ms = 0  # monotonic
        self._polled_ms: int | None = None  # wall clock of the last poll

    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        at_ms = message.enqueued_ms or app.clock.now_ms()
        delay_ms = None if message.eta_ms is None else max(0, message.eta_ms - at_ms)
        self.store.record(message.id, message.job, message.queue, "enqueued", at_ms, attempt=message.attempt,
                          delay_ms=delay_ms, lazy=self.lazy or _in_job_transaction())

    def before_process(self, ctx: JobContext, message: JobMessage) -> None:
        if self._maybe_cancelled(ctx, message.id) and self.store.is_cancelled(message.id):
            self._record(ctx, message, "cancelled", "skipped: cancelled before it ran")
            raise Skip("cancelled")

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        self.store.record(message.id, message.job, message.queue, "started", ctx.clock.now_ms(),
                          ctx.worker_id, message.attempt, lazy=True)
        try:
            return call()
        except Skip as skip:  # an inner wrap decided late not to run it (exactly-once: done already)
            self._record(ctx, message, "skipped", skip.reason)
            raise

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        if exception is not None:
            self._record(ctx, message, "failed", f"{type(exception).__name__}: {exception}"[:4000])
        elif ctx.cancelled:
            self._record(ctx, message, "cancelled", "cancelled while running; the job returned")
        else:
            self._record(ctx, message, "succeeded")

    def after_retry(self, ctx: JobContext, message: JobMessage, delay_ms: int, reason: str) -> None:
        """``message`` is the next attempt; the event belongs to the attempt that failed, with the
        delay until the next one."""
        self.store.record(message.id, message.job, message.queue, "retried", ctx.clock.now_ms(),
                          ctx.worker_id, max(0, message.attempt - 1), reason[:4000], delay_ms, lazy=self.lazy)

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        self._record(ctx, message, "dead", reason[:4000])

    def before_worker_shutdown(self, worker: Any) -> None:
        self.store.flush()

    def report_progress(self, ctx: JobContext, fraction: float, note: str) -> None:
        """What ``ctx.progress`` calls (wired as ``app.report_progress``)."""
        self.store.progress(ctx.message.id, fraction, note, ctx.clock.now_ms())

    def mark_cancelled(self, running: Iterable[JobContext]) -> int:
        """Set ``ctx.cancelled`` on the running jobs someone asked to cancel (one query for all);
        how many are cancelled. A worker calls it about once a second."""
        contexts = {ctx.message.id: ctx for ctx in running}
        cancelled = self.store.cancelled_among(list(contexts))
        for job_id in cancelled:
            contexts[job_id].cancelled = True
        return len(cancelled)

    def _maybe_cancelled(self, ctx: JobContext, job_id: str) -> bool:
        """Whether the last poll saw ``job_id`` cancelled (then the store is asked, to be sure: a
        replay may have lifted it); polls when the last one is older than ``cancel_poll_ms``."""
        if not self.cancel_poll_ms:
            return True
        mono_ms = ctx.clock.monotonic_ms()
        if mono_ms >= self._next_poll_ms:
            with self._poll_lock:
                if mono_ms >= self._next_poll_ms:
                    since = 0 if self._polled_ms is None else self._polled_ms - CANCEL_SKEW_MS
                    self._polled_ms = ctx.clock.now_ms()
                    self._cancelled |= self.store.cancelled_since(since)
                    self._next_poll_ms = mono_ms + self.cancel_poll_ms
        return job_id in self._cancelled

    def _record(self, ctx: JobContext, message: JobMessage, state: str, detail: str = "",
                delay_ms: int | None = None) -> None:
        self.store.record(message.id, message.job, message.queue, state, ctx.clock.now_ms(), ctx.worker_id,
                          message.attempt, detail, delay_ms, lazy=self.lazy)


def _flush_at_exit(ref: weakref.ref[StateStore]) -> None:
    store = ref()
    if store is not None:
        try:
            store.flush()
        except Exception:
            log.exception("job state: events pending at exit could not be written")


def _in_job_transaction() -> bool:
    """Whether this thread runs a job inside a transaction a middleware opened (a send from inside
    a job): then no write of ours may start here."""
    try:
        return current.tx is not None
    except RuntimeError:  # not inside a job
        return False


def _filters(state: str | None, job: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, params = [], []
    for column, value in (("state", state), ("job", job)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)


def _job_state(row: Sequence[Any]) -> JobState:
    return JobState(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10],
                    bool(row[11]))
