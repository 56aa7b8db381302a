"""The job system's shared database: SQLite by default, PostgreSQL when workers span hosts.

Idempotency keys, results, job states, scheduler leases, rate-limit counters and the outbox must be
seen by every worker process at once, so they live in a database, never in one worker's memory.
Each module owns its own tables and statements (a dozen in all), so an ORM would add a layer and
no safety; this adapter only hides the two differences that matter: the placeholder style and
how a write transaction starts.

SQL is written once, with ``?`` placeholders and the portable subset both engines share
(``INSERT ... ON CONFLICT``, ``RETURNING``); ``{blob}`` and ``{bigint}`` in DDL become each
engine's type names.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlparse

SQLITE_BUSY_TIMEOUT_MS = 30_000  # writers queue on SQLite's lock; a worker waits this long at most
_TYPES = {
    "sqlite": {"blob": "BLOB", "bigint": "INTEGER"},
    "postgresql": {"blob": "BYTEA", "bigint": "BIGINT"},
}


SCHEMA_LOCK = 0x6665727279  # the PostgreSQL advisory lock that serialises the job stores' DDL


class Tx:
    """One transaction: ``execute`` with ``?`` placeholders on either engine."""

    __slots__ = ("_cur", "_pg")

    def __init__(self, cursor: Any, postgres: bool) -> None:
        self._cur = cursor
        self._pg = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the returned cursor has fetchone/fetchall/rowcount."""
        self._cur.execute(sql.replace("?", "%s") if self._pg else sql, params)
        return self._cur

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(sql.replace("?", "%s") if self._pg else sql, rows)


class Database:
    """A URL (``sqlite:///path``, ``sqlite://`` for a private in-memory database,
    ``postgresql://user:pw@host:port/db``) and one connection per thread (neither sqlite3 nor
    psycopg connections may be shared between threads mid-transaction)."""

    def __init__(self, url: str, *, durable: bool = True) -> None:
        parsed = urlparse(url)
        if parsed.scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError(f"unsupported database URL {url!r}: use sqlite:///path or postgresql://...")
        self.url = url
        self.dialect = "sqlite" if parsed.scheme == "sqlite" else "postgresql"
        self.durable = durable  # False: SQLite commits without fsync (tests, throwaway state)
        self._path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else ""
        self._local = threading.local()
        self._shared: sqlite3.Connection | None = None  # in-memory SQLite: one connection, locked
        self._lock = threading.RLock()

    def ddl(self, statement: str) -> str:
        """``statement`` with ``{blob}`` / ``{bigint}`` replaced by this engine's type names."""
        return statement.format(**_TYPES[self.dialect])

    def create(self, statements: Sequence[str]) -> None:
        """Create tables and indexes (``CREATE ... IF NOT EXISTS``) in one transaction, safe when
        worker processes start together on an empty PostgreSQL database (two racing CREATE TABLE
        IF NOT EXISTS of one name fail there): the DDL runs under a transaction-scoped advisory
        lock. (SQLite's BEGIN IMMEDIATE already serialises it.)"""
        with self.transaction() as tx:
            if self.dialect == "postgresql":
                tx.execute("SELECT pg_advisory_xact_lock(?)", (SCHEMA_LOCK,))
            for statement in statements:
                tx.execute(self.ddl(statement))

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """A write transaction: committed on exit, rolled back on an exception. SQLite takes its
        write lock up front (BEGIN IMMEDIATE), so two processes never deadlock on an upgrade."""
        if self.dialect == "postgresql":
            conn = self._postgres()
            with conn.transaction():
                yield Tx(conn.cursor(), True)
            return
        with self._memory_lock():
            conn = self._sqlite()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(conn.cursor(), False)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection (other threads close theirs when they end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # --- connections ---------------------------------------------------------------------------

    @contextmanager
    def _memory_lock(self) -> Iterator[None]:
        if self._path:
            yield
            return
        with self._lock:
            yield

    def _sqlite(self) -> sqlite3.Connection:
        if not self._path:
            if self._shared is None:
                self._shared = sqlite3.connect(":memory:", isolation_level=None,
                                               check_same_thread=False)
            return self._shared
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, isolation_level=None,
                                   timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'OFF'}")
            self._local.conn = conn
        return conn

    def _postgres(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            import psycopg  # only PostgreSQL users need it installed

            conn = psycopg.connect(self.url, autocommit=True)
            self._local.conn = conn
        return conn
