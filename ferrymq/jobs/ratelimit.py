"""Rate limits shared by every worker thread and process: token bucket, concurrency, sliding window.

A limit held in one worker's memory is a limit per worker, so every limiter keeps its state in the
job system's database and decides inside one write transaction (SQLite takes its write lock up
front with BEGIN IMMEDIATE; on PostgreSQL the first statement is an UPDATE of the limiter's own row,
which holds that row's lock to the commit). A limiter answers ``acquire(db, now_ms)`` with 0 (go)
or the milliseconds to wait; the worker turns a wait into a ``Defer``, which republishes the job
delayed without spending an attempt.

Each limiter's row also holds the latest time it has seen: decisions use ``max(now_ms, that)``, so
two processes whose clocks disagree by a few ms cannot both count a grant as outside a window.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ferrymq.jobs.db import Database, Tx
from ferrymq.jobs.durations import to_ms
from ferrymq.jobs.errors import Defer
from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

MAX_RATE = 1_000_000  # grants per period; keeps now_ms * rate inside a signed 64-bit integer
CONCURRENCY_RETRY_MS = 1_000  # a full concurrency limit asks to come back after this long at most

TABLES = (
    "CREATE TABLE IF NOT EXISTS ferrymq_limiters (name TEXT PRIMARY KEY, kind TEXT NOT NULL,"
    " value {bigint} NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ferrymq_limiter_slots (name TEXT NOT NULL, holder TEXT NOT NULL,"
    " expires_ms {bigint} NOT NULL, PRIMARY KEY (name, holder))",
    "CREATE TABLE IF NOT EXISTS ferrymq_limiter_grants (name TEXT NOT NULL, at_ms {bigint} NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ferrymq_limiter_grants_at ON ferrymq_limiter_grants (name, at_ms)",
)
_ready: weakref.WeakSet[Database] = weakref.WeakSet()
_ready_lock = threading.Lock()  # PostgreSQL fails two CREATE TABLE IF NOT EXISTS racing on one name
def create_tables(db: Database) -> None:
    """Create the limiters' tables once per Database object (idempotent)."""
    if db in _ready:
        return
    with _ready_lock:
        if db not in _ready:
            db.create(TABLES)
            _ready.add(db)


class Limiter:
    """What every limiter offers; ``holder`` names the job holding a grant (concurrency uses it)."""

    kind = ""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("a rate limit needs a non-empty name (it is shared by every worker)")
        self.name = name

    def acquire(self, db: Database, now_ms: int, holder: str = "") -> int:
        """0 if granted, else how many ms to wait before asking again."""
        create_tables(db)
        with db.transaction() as tx:
            return self._acquire(tx, now_ms, holder)

    def release(self, db: Database, holder: str = "") -> None:
        """Give back what ``holder`` holds (only a concurrency limit holds anything)."""

    def _acquire(self, tx: Tx, now_ms: int, holder: str) -> int:
        raise NotImplementedError

    def _lock(self, tx: Tx, now_ms: int) -> int:
        """Lock this limiter's row, advance its clock to ``now_ms`` and return the limiter's time."""
        sql = ("UPDATE ferrymq_limiters SET value = CASE WHEN value > ? THEN value ELSE ? END"
               " WHERE name = ? AND kind = ? RETURNING value")
        row = tx.execute(sql, (now_ms, now_ms, self.name, self.kind)).fetchone()
        if row is None:
            self._insert_row(tx, now_ms)
            row = tx.execute(sql, (now_ms, now_ms, self.name, self.kind)).fetchone()
        return int(row[0])

    def _insert_row(self, tx: Tx, value: int) -> None:
        """First use of this name: make its row, or fail if another kind of limiter owns the name."""
        tx.execute("INSERT INTO ferrymq_limiters (name, kind, value) VALUES (?, ?, ?)"
                   " ON CONFLICT (name) DO NOTHING", (self.name, self.kind, value))
        row = tx.execute("SELECT kind FROM ferrymq_limiters WHERE name = ?", (self.name,)).fetchone()
        if row[0] != self.kind:
            raise ValueError(f"rate limit name {self.name!r} is already used by a {row[0]} limiter")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class TokenBucket(Limiter):
    """``rate`` grants per ``per``, with bursts of up to ``burst`` (default ``rate``).

    Kept as a generic cell rate algorithm: one integer per limiter, the theoretical arrival time of
    the next grant, counted in units of 1/rate ms so all arithmetic stays in integers. One UPDATE
    both tests and takes the grant."""

    kind = "token_bucket"

    def __init__(self, name: str, rate: int, per: str | int | float = "1s", burst: int | None = None) -> None:
        super().__init__(name)
        if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= MAX_RATE:
            raise ValueError(f"rate limit {name!r}: rate must be a whole number 1..{MAX_RATE}, not {rate!r}"
                             " (write 1 per 2s rather than 0.5 per 1s)")
        per_ms = to_ms(per)
        if not per_ms:
            raise ValueError(f"rate limit {name!r}: per must be a positive duration, not {per!r}")
        burst = rate if burst is None else burst
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"rate limit {name!r}: burst must be a whole number >= 1, not {burst!r}")
        self.rate, self.per_ms, self.burst = rate, per_ms, burst

    def _acquire(self, tx: Tx, now_ms: int, holder: str) -> int:
        now_t, tau = now_ms * self.rate, self.per_ms * (self.burst - 1)
        sql = ("UPDATE ferrymq_limiters SET value = CASE WHEN value > ? THEN value ELSE ? END + ?"
               " WHERE name = ? AND kind = ? AND value - ? <= ?")
        params = (now_t, now_t, self.per_ms, self.name, self.kind, now_t, tau)
        if tx.execute(sql, params).rowcount == 1:
            return 0
        row = tx.execute("SELECT value FROM ferrymq_limiters WHERE name = ? AND kind = ?",
                         (self.name, self.kind)).fetchone()
        if row is None:
            self._insert_row(tx, 0)
            return 0 if tx.execute(sql, params).rowcount == 1 else 1
        return max(1, -(-(int(row[0]) - now_t - tau) // self.rate))


class ConcurrencyLimit(Limiter):
    """At most ``limit`` jobs hold a slot at once. A slot is leased: a worker that dies holding one
    frees it when the lease runs out; ``renew`` extends the lease of a job that runs longer."""

    kind = "concurrency"

    def __init__(self, name: str, limit: int, lease: str | int | float = "60s",
                 retry: str | int | float = CONCURRENCY_RETRY_MS / 1000) -> None:
        super().__init__(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"rate limit {name!r}: limit must be a whole number >= 1, not {limit!r}")
        lease_ms, retry_ms = to_ms(lease), to_ms(retry)
        if not lease_ms or not retry_ms:
            raise ValueError(f"rate limit {name!r}: lease and retry must be positive durations")
        self.limit, self.lease_ms, self.retry_ms = limit, lease_ms, retry_ms

    def _acquire(self, tx: Tx, now_ms: int, holder: str) -> int:
        if not holder:
            raise ValueError(f"concurrency limit {self.name!r}: acquire needs a holder (the job id)")
        now_ms = self._lock(tx, now_ms)
        count, soonest, mine = tx.execute(
            "SELECT COUNT(*), MIN(expires_ms), COUNT(CASE WHEN holder = ? THEN 1 END)"
            " FROM ferrymq_limiter_slots WHERE name = ? AND expires_ms > ?",
            (holder, self.name, now_ms)).fetchone()
        if mine or count < self.limit:  # mine: a redelivery of a run that died holding its slot
            tx.execute("INSERT INTO ferrymq_limiter_slots (name, holder, expires_ms) VALUES (?, ?, ?)"
                       " ON CONFLICT (name, holder) DO UPDATE SET expires_ms = excluded.expires_ms",
                       (self.name, holder, now_ms + self.lease_ms))
            return 0
        tx.execute("DELETE FROM ferrymq_limiter_slots WHERE name = ? AND expires_ms <= ?",
                   (self.name, now_ms))  # the leases of dead workers, cleared when they are in the way
        return max(1, min(int(soonest) - now_ms, self.retry_ms))

    def release(self, db: Database, holder: str = "") -> None:
        create_tables(db)
        with db.transaction() as tx:
            tx.execute("DELETE FROM ferrymq_limiter_slots WHERE name = ? AND holder = ?", (self.name, holder))

    def renew(self, db: Database, holder: str, now_ms: int) -> bool:
        """Extend ``holder``'s lease by a full lease from now; False if it no longer holds a slot."""
        create_tables(db)
        with db.transaction() as tx:
            cur = tx.execute("UPDATE ferrymq_limiter_slots SET expires_ms = ?"
                             " WHERE name = ? AND holder = ? AND expires_ms > ?",
                             (now_ms + self.lease_ms, self.name, holder, now_ms))
            return bool(cur.rowcount)

    def held(self, db: Database, now_ms: int) -> int:
        """Slots held now (for dashboards and tests)."""
        create_tables(db)
        with db.transaction() as tx:
            row = tx.execute("SELECT COUNT(*) FROM ferrymq_limiter_slots WHERE name = ? AND expires_ms > ?",
                             (self.name, now_ms)).fetchone()
        return int(row[0])


class SlidingWindow(Limiter):
    """At most ``limit`` grants in any ``window``: an exact log of grant times, pruned as they age
    out (one row per grant held for one window, so keep ``limit`` in the thousands at most)."""

    kind = "sliding_window"

    def __init__(self, name: str, limit: int, window: str | int | float = "1m") -> None:
        super().__init__(name)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"rate limit {name!r}: limit must be a whole number >= 1, not {limit!r}")
        window_ms = to_ms(window)
        if not window_ms:
            raise ValueError(f"rate limit {name!r}: window must be a positive duration, not {window!r}")
        self.limit, self.window_ms = limit, window_ms

    def _acquire(self, tx: Tx, now_ms: int, holder: str) -> int:
        now_ms = self._lock(tx, now_ms)
        tx.execute("DELETE FROM ferrymq_limiter_grants WHERE name = ? AND at_ms <= ?",
                   (self.name, now_ms - self.window_ms))
        count, oldest = tx.execute("SELECT COUNT(*), MIN(at_ms) FROM ferrymq_limiter_grants WHERE name = ?",
                                   (self.name,)).fetchone()
        if count < self.limit:
            tx.execute("INSERT INTO ferrymq_limiter_grants (name, at_ms) VALUES (?, ?)", (self.name, now_ms))
            return 0
        return max(1, int(oldest) + self.window_ms - now_ms)


def limiter_of(options: Any) -> Limiter | None:
    """The limiter a job's options name, checked (a wrong type is a definition error, said once)."""
    limiter = getattr(options, "rate_limit", None)
    if limiter is not None and not isinstance(limiter, Limiter):
        raise TypeError(f"job {getattr(options, 'name', '?')!r}: rate_limit must be a TokenBucket, "
                        f"ConcurrencyLimit or SlidingWindow, not {type(limiter).__name__}")
    return limiter


class RateLimitMiddleware(Middleware):
    """Holds back jobs whose ``rate_limit`` says not yet: the job goes back to the broker delayed by
    the limiter's wait (``Defer``), with no attempt spent. A concurrency slot is given back when the
    run ends (in ``wrap``, outside the exactly-once transaction when this middleware comes before
    IdempotencyMiddleware). A job that a later before_process skips after it took a slot (a
    redelivery of a completed job) holds that slot until its lease runs out."""

    def __init__(self, db: Database) -> None:
        self.db = db
        create_tables(db)

    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        """A rate_limit that is not a limiter fails the send, where the user can see it."""
        job = app.jobs.get(message.job)
        if job is not None:
            limiter_of(job.options)

    def after_worker_boot(self, worker: Any) -> None:
        """...and stops a worker at start, rather than failing every delivery of that job."""
        for job in worker.app.jobs.values():
            limiter_of(job.options)

    def before_process(self, ctx: JobContext, message: JobMessage) -> None:
        limiter = self._limiter(ctx, message)
        if limiter is not None:
            wait_ms = limiter.acquire(self.db, ctx.clock.now_ms(), holder=message.id)
            if wait_ms:
                raise Defer(wait_ms, f"rate limit {limiter.name!r}: not before {wait_ms} ms")

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """Give the slot back however the run ends: returned, raised, or skipped by an inner wrap."""
        limiter = self._limiter(ctx, message)
        try:
            return call()
        finally:
            if limiter is not None:
                limiter.release(self.db, holder=message.id)

    @staticmethod
    def _limiter(ctx: JobContext, message: JobMessage) -> Limiter | None:
        job = ctx.app.jobs.get(message.job)
        return None if job is None else limiter_of(job.options)
