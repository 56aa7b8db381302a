"""Leader leases with fencing tokens, held in the job system's shared database.

One holder at a time holds a named lease until its expiry; it renews before then, or another
holder takes the lease over once it has lapsed. Each new term of a lease gets a token one higher
than the last (per name, across holders, never reused, kept through releases), so work stamped
with a token can be refused once a newer term exists: a leader paused past its lease (a GC
stop, a frozen VM) and waking up to write is fenced off by its lower token, whatever it believes.

Every change is one conditional statement (``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` or
``UPDATE ... WHERE``), atomic on SQLite and PostgreSQL alike without table locks. Expiry is
judged by the ``now_ms`` the caller passes (its injected clock): holders on several hosts need
clocks in step to within a small part of the lease, and the fencing token covers the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrymq.jobs.db import Database

TABLE = "ferrymq_leases"
_DDL = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name TEXT PRIMARY KEY, holder TEXT, token {{bigint}} NOT NULL,"
    " expires_ms {bigint} NOT NULL)",
]
_ACQUIRE = (
    f"INSERT INTO {TABLE} (name, holder, token, expires_ms) VALUES (?, ?, 1, ?)"
    " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms,"
    f" token = CASE WHEN {TABLE}.holder = excluded.holder AND {TABLE}.expires_ms > ? THEN {TABLE}.token"
    f" ELSE {TABLE}.token + 1 END"
    f" WHERE {TABLE}.expires_ms <= ? OR {TABLE}.holder = excluded.holder"
    " RETURNING token"
)


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a lease, in which term, until when (a lapsed lease still shows its last term)."""

    name: str
    holder: str | None
    token: int
    expires_ms: int


class LeaseStore:
    """Leases on a Database; creates its table on first use."""

    def __init__(self, db: Database) -> None:
        self.db = db
        db.create(_DDL)

    def acquire(self, name: str, holder: str, ttl_ms: int, now_ms: int) -> int | None:
        """Take the lease until ``now_ms + ttl_ms`` if it is free, lapsed or already ours; the
        token of the term held, or None while another holder's lease runs. Our own live lease is
        extended in the same term; taking a lapsed one (even our own) starts a new term."""
        _check_ttl(ttl_ms)
        with self.db.transaction() as tx:
            row = tx.execute(_ACQUIRE, (name, holder, now_ms + ttl_ms, now_ms, now_ms)).fetchone()
        return None if row is None else int(row[0])

    def renew(self, name: str, holder: str, token: int, ttl_ms: int, now_ms: int) -> bool:
        """Extend our live lease of term ``token``; False if it lapsed, was released or taken:
        a holder whose lease expired must acquire again, and gets a new token."""
        _check_ttl(ttl_ms)
        with self.db.transaction() as tx:
            cur = tx.execute(f"UPDATE {TABLE} SET expires_ms = ? WHERE name = ? AND holder = ? AND token = ?"
                             " AND expires_ms > ?", (now_ms + ttl_ms, name, holder, token, now_ms))
            return bool(cur.rowcount == 1)

    def release(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up now (a clean shutdown), so a standby need not wait out the lease.
        The token stays, so the next term still gets a higher one."""
        with self.db.transaction() as tx:
            cur = tx.execute(f"UPDATE {TABLE} SET holder = NULL, expires_ms = 0 WHERE name = ? AND holder = ?"
                             " AND token = ?", (name, holder, token))
            return bool(cur.rowcount == 1)

    def get(self, name: str) -> Lease | None:
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT holder, token, expires_ms FROM {TABLE} WHERE name = ?",
                             (name,)).fetchone()
        return None if row is None else Lease(name, row[0], int(row[1]), int(row[2]))

    def token(self, name: str) -> int:
        """The latest term's token (0 if the lease was never taken): work stamped lower is stale."""
        lease = self.get(name)
        return 0 if lease is None else lease.token


def _check_ttl(ttl_ms: int) -> None:
    if ttl_ms <= 0:
        raise ValueError(f"a lease needs a positive ttl_ms, not {ttl_ms}")
