"""Cron schedules fired by exactly one scheduler at a time, however many run.

Every ``ferrymq worker`` may run a scheduler; they share the app's database. Each tick a
scheduler takes or renews the leader lease (leases.py); only the holder fires. Firing is two
steps, so that no fire is lost and none is sent twice by design:

1. **Record** (one transaction): read the schedule's cursor (how far it has been evaluated),
   compute what is due up to now (cron.py: DST rules and the missed-run policy), write one row per
   fire stamped with the lease's fencing token, and move the cursor with a compare-and-set. A
   token lower than the latest lease term, or than the one the cursor was last moved with, is
   refused (StaleToken): a leader that slept past its lease cannot fire.
2. **Send**: enqueue every recorded fire not yet sent with ``job.send_with_options(args, kwargs,
   key="cron:<name>:<fire_ms>")``, then mark it sent. A leader that dies between the two leaves
   the fire pending and the next leader sends it: at least once, and the key makes a repeat
   harmless downstream (the idempotency middleware drops a second send of a key, and a worker
   does not run a key that completed).

A send that failed may have claimed the fire's key at enqueue without publishing (a broker that
went away mid-send), and a second ``send_with_options`` would then be dropped as a duplicate:
so a fire's later attempts are published with ``app.publish_raw`` (no enqueue hooks), and the
execution-side key check keeps a fire that did get out the first time from running twice.

A schedule seen for the first time starts at that moment: nothing before it fires.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ferrymq.clock import Clock
from ferrymq.jobs.cron import MISFIRE_GRACE_MS, CronSchedule, check_policy, due
from ferrymq.jobs.db import Database, Tx
from ferrymq.jobs.errors import JobError
from ferrymq.jobs.leases import TABLE as LEASES
from ferrymq.jobs.leases import LeaseStore

if TYPE_CHECKING:
    from ferrymq.jobs.app import App

LEASE_NAME = "ferrymq.jobs.scheduler"
DEFAULT_LEASE_MS = 10_000
RENEWALS_PER_LEASE = 3  # the leader renews this often within one lease; a standby polls as often
MIN_SLEEP_MS = 10  # never spin: a wake-up a little early re-ticks and sleeps again
STATE = "ferrymq_cron_state"
FIRES = "ferrymq_cron_fires"
log = logging.getLogger("ferrymq.jobs.scheduler")

_DDL = [
    f"CREATE TABLE IF NOT EXISTS {STATE} (name TEXT PRIMARY KEY, cursor_ms {{bigint}} NOT NULL,"
    " token {bigint} NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {FIRES} (name TEXT NOT NULL, fire_ms {{bigint}} NOT NULL,"
    " token {bigint} NOT NULL, recorded_ms {bigint} NOT NULL, sent_ms {bigint},"
    " attempts {bigint} NOT NULL DEFAULT 0, PRIMARY KEY (name, fire_ms))",
    f"CREATE INDEX IF NOT EXISTS {FIRES}_unsent ON {FIRES} (name, sent_ms)",
]


class StaleToken(JobError):
    """A fire stamped with a fencing token older than the latest lease term: refused."""


@dataclass(slots=True)
class ScheduleSpec:
    """One cron schedule of an app (``App.schedule``); expression, zone and policy are checked
    here, when the app is defined, so a typo stops the import with one clear error."""

    name: str
    cron: str
    tz: str = "UTC"
    missed: str = "skip"
    job: Any = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    schedule: CronSchedule = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.schedule = CronSchedule(self.cron, self.tz)
        check_policy(self.missed)


@dataclass(frozen=True, slots=True)
class Fire:
    name: str
    fire_ms: int
    token: int
    attempts: int = 0  # sends tried before this one

    @property
    def key(self) -> str:
        """The idempotency key the fire is sent with: the same for every send of this fire."""
        return f"cron:{self.name}:{self.fire_ms}"


class FireLog:
    """The schedules' cursors and fire records (created on first use): the fencing point."""

    def __init__(self, db: Database, lease_name: str = LEASE_NAME) -> None:
        self.db = db
        self.lease_name = lease_name
        db.create(_DDL)

    def record(self, spec: ScheduleSpec, token: int, now_ms: int,
               grace_ms: int = MISFIRE_GRACE_MS) -> list[Fire]:
        """Record the fires of ``spec`` due at ``now_ms`` under lease term ``token`` and move its
        cursor to ``now_ms``; the fires recorded (none if another scheduler moved the cursor
        first). Raises StaleToken if a newer term exists."""
        with self.db.transaction() as tx:
            self._fence(tx, spec.name, token)
            row = tx.execute(f"SELECT cursor_ms FROM {STATE} WHERE name = ?", (spec.name,)).fetchone()
            if row is None:
                tx.execute(f"INSERT INTO {STATE} (name, cursor_ms, token) VALUES (?, ?, ?)"
                           " ON CONFLICT (name) DO NOTHING", (spec.name, now_ms, token))
                return []
            times = due(spec.schedule, spec.missed, row[0], now_ms, grace_ms)
            fires = [Fire(spec.name, at, token) for at in times]
            moved = tx.execute(f"UPDATE {STATE} SET cursor_ms = ?, token = ? WHERE name = ? AND cursor_ms = ?"
                               " AND token <= ?", (max(now_ms, row[0]), token, spec.name, row[0], token))
            if moved.rowcount != 1:
                return []
            tx.executemany(f"INSERT INTO {FIRES} (name, fire_ms, token, recorded_ms) VALUES (?, ?, ?, ?)"
                           " ON CONFLICT (name, fire_ms) DO NOTHING",
                           [(f.name, f.fire_ms, f.token, now_ms) for f in fires])
        return fires

    def _fence(self, tx: Tx, name: str, token: int) -> None:
        lease = tx.execute(f"SELECT token FROM {LEASES} WHERE name = ?", (self.lease_name,)).fetchone()
        state = tx.execute(f"SELECT token FROM {STATE} WHERE name = ?", (name,)).fetchone()
        latest = max(lease[0] if lease else 0, state[0] if state else 0)
        if token < latest:
            raise StaleToken(f"schedule {name!r}: fencing token {token} is older than the latest term"
                             f" {latest}")

    def unsent(self, name: str) -> list[Fire]:
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT fire_ms, token, attempts FROM {FIRES} WHERE name = ?"
                              " AND sent_ms IS NULL ORDER BY fire_ms", (name,)).fetchall()
        return [Fire(name, int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def count_attempt(self, fire: Fire) -> None:
        """Note a send about to be tried, before it is: a crash mid-send still counts."""
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE {FIRES} SET attempts = attempts + 1 WHERE name = ? AND fire_ms = ?",
                       (fire.name, fire.fire_ms))

    def mark_sent(self, fire: Fire, now_ms: int) -> None:
        with self.db.transaction() as tx:
            tx.execute(f"UPDATE {FIRES} SET sent_ms = ? WHERE name = ? AND fire_ms = ?",
                       (now_ms, fire.name, fire.fire_ms))

    def fires(self, name: str) -> list[tuple[int, int, int | None]]:
        """(fire_ms, token, sent_ms) of every recorded fire of ``name``, oldest first."""
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT fire_ms, token, sent_ms FROM {FIRES} WHERE name = ? ORDER BY fire_ms",
                              (name,)).fetchall()
        return [(int(r[0]), int(r[1]), None if r[2] is None else int(r[2])) for r in rows]

    def last_sent(self) -> dict[str, int]:
        """Schedule name -> its latest fire that was sent (ms), for every schedule that fired."""
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT name, MAX(fire_ms) FROM {FIRES} WHERE sent_ms IS NOT NULL"
                              " GROUP BY name").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def cursor(self, name: str) -> int | None:
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT cursor_ms FROM {STATE} WHERE name = ?", (name,)).fetchone()
        return None if row is None else int(row[0])


class Scheduler:
    """Fires an app's schedules while it holds the leader lease; a standby otherwise. ``tick``
    does one round (tests drive it with a ManualClock); ``run`` ticks until stopped."""

    def __init__(self, app: App, clock: Clock | None = None, holder: str | None = None,
                 lease_ms: int = DEFAULT_LEASE_MS, *, db: Database | None = None,
                 specs: list[ScheduleSpec] | None = None, grace_ms: int = MISFIRE_GRACE_MS) -> None:
        store = db if db is not None else app.db
        if store is None:
            raise ValueError("the scheduler keeps its lease and fires in a database: "
                             "give the app a store (App(store='sqlite:///jobs.db')) or pass db=")
        if grace_ms < lease_ms:
            raise ValueError(f"grace_ms ({grace_ms}) must cover a leader takeover: at least lease_ms"
                             f" ({lease_ms})")
        self.app = app
        self.clock: Clock = clock or app.clock
        self.specs = list(app.schedules if specs is None else specs)
        _check_unique(self.specs)
        self.holder = holder or _default_holder(app)
        self.lease_ms = lease_ms
        self.grace_ms = grace_ms
        self.leases = LeaseStore(store)
        self.log = FireLog(store)
        self.token: int | None = None

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    def tick(self) -> list[Fire]:
        """Take or renew the lease; if held, record what is due and send every unsent fire.
        The fires sent this tick, oldest first per schedule."""
        now = self.clock.now_ms()
        if not self._lead(now):
            return []
        sent: list[Fire] = []
        for spec in self.specs:
            try:
                self.log.record(spec, self.token or 0, now, self.grace_ms)
            except StaleToken as exc:
                log.warning("scheduler %s lost the lead: %s", self.holder, exc)
                self.token = None
                return sent
            sent += self._send_unsent(spec)
        return sent

    def _lead(self, now_ms: int) -> bool:
        if self.token is not None and self.leases.renew(LEASE_NAME, self.holder, self.token, self.lease_ms,
                                                        now_ms):
            return True
        was_leader = self.token is not None
        self.token = self.leases.acquire(LEASE_NAME, self.holder, self.lease_ms, now_ms)
        if self.token is not None and not was_leader:
            log.info("scheduler %s leads (term %d)", self.holder, self.token)
        return self.token is not None

    def _send_unsent(self, spec: ScheduleSpec) -> list[Fire]:
        sent = []
        for fire in self.log.unsent(spec.name):
            self.log.count_attempt(fire)
            try:
                _send(spec, fire)
            except Exception:  # the broker is away: the fire stays unsent, the next tick sends it
                log.exception("schedule %r: sending the fire at %d failed; retrying next tick", spec.name,
                              fire.fire_ms)
                break
            self.log.mark_sent(fire, self.clock.now_ms())
            sent.append(fire)
        return sent

    def next_runs(self) -> dict[str, int | None]:
        """When each schedule fires next (ms; None if its expression never matches again)."""
        now = self.clock.now_ms()
        return {spec.name: spec.schedule.next_fire(now) for spec in self.specs}

    def sleep_ms(self) -> int:
        """Until the next fire or the next lease renewal (or takeover attempt), whichever is first."""
        now = self.clock.now_ms()
        wait = self.lease_ms // RENEWALS_PER_LEASE
        for at in self.next_runs().values():
            if at is not None:
                wait = min(wait, at - now)
        return max(MIN_SLEEP_MS, wait)

    def run(self, stop: threading.Event) -> None:
        """Tick until ``stop`` is set (it interrupts a sleep at once), then release the lease so
        a standby takes over without waiting it out."""
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a database hiccup must not end the scheduler thread
                log.exception("scheduler tick failed; retrying")
            stop.wait(self.sleep_ms() / 1000)
        self.close()

    def close(self) -> None:
        """Release the lease if held (a failure only means a standby waits the lease out)."""
        token, self.token = self.token, None
        if token is not None:
            try:
                self.leases.release(LEASE_NAME, self.holder, token)
            except Exception:
                log.exception("scheduler %s: releasing the lease failed; it lapses by itself", self.holder)


def _send(spec: ScheduleSpec, fire: Fire) -> None:
    if fire.attempts == 0:
        spec.job.send_with_options(args=spec.args, kwargs=spec.kwargs, key=fire.key)
        return
    # an earlier attempt may have claimed the key at enqueue and never published: bypass that check
    log.info("schedule %r: sending the fire at %d again (attempt %d)", spec.name, fire.fire_ms,
             fire.attempts + 1)
    spec.job.app.publish_raw(spec.job.message(spec.args, spec.kwargs, key=fire.key), 0)


def _check_unique(specs: list[ScheduleSpec]) -> None:
    names = [s.name for s in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"schedule names must be unique; repeated: {', '.join(repeated)}")


def _default_holder(app: App) -> str:
    """Host, process and a random tag: unique per scheduler, readable in the lease table."""
    return f"{socket.gethostname()}:{os.getpid()}:{app.rng.getrandbits(32):08x}"
