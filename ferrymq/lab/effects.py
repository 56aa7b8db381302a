"""A consumer's effect, and the idempotent consumer's store, shared by the AMQP and Kafka workers.

Why the work is split in halves around the effect (``--effect-at mid``): a crash lands somewhere in
a handler, and where it lands decides what a delivery guarantee costs. Acked (or committed) before
the work, a crash in the first half loses the message; acked after, a crash in the second half
repeats an effect already applied. With the effect at the end (the default) the second window is
a few microseconds wide and at-least-once shows almost no duplicates, which is not what users see.

The store is SQLite in WAL mode: the processed id and the effect commit in one transaction, and a
kill -9 of the process (not of the machine) keeps every committed transaction, so a restarted
worker reopening the file skips what was already applied.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


class EffectStore:
    """Processed message ids: ``apply`` is True the first time an id is seen, False after."""

    def __init__(self, path: str | Path) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # a process crash keeps committed rows
        self.db.execute("CREATE TABLE IF NOT EXISTS done (id INTEGER PRIMARY KEY, effects INTEGER)")

    def apply(self, msg_id: int) -> bool:
        cur = self.db.execute("INSERT OR IGNORE INTO done (id, effects) VALUES (?, 1)", (msg_id,))
        return cur.rowcount == 1

    def close(self) -> None:
        self.db.close()


def read_ids(path: str | Path) -> set[int]:
    """Every id whose effect the store holds (the lab reads it after the workers are gone)."""
    if not Path(path).exists():
        return set()
    db = sqlite3.connect(str(path))
    try:
        return {row[0] for row in db.execute("SELECT id FROM done")}
    finally:
        db.close()

