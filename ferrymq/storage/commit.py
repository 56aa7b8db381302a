"""Durability: the fsync policy, group commit, and the only fsync system calls in FerryMQ.

Why one place: a record counts as stored only after the fsync that covers it, so every confirm and
produce ack hangs on this module. Segments and logs expose ``fsync()`` as a mechanism (built on
``sync_data`` / ``sync_directory`` below); only ``GroupCommit`` decides *when* it runs.

Group commit: during a loop turn the server appends to many logs and calls ``note_append(log)``;
at the end of the turn it calls ``commit()`` once, which fsyncs each dirty log once, however many
appends it took. That is one fsync per log per turn instead of one per message.

Threading contract (``commit()`` may run in a thread executor while the loop keeps appending):

1. Before calling ``commit()``, the caller captures what it intends to confirm (e.g. each dirty log's
   ``next_offset`` and the pending confirms up to it).
2. ``commit()`` swaps the dirty set out under a lock, then fsyncs each log. A log's ``fsync()`` covers
   every byte written to the OS before it started, so everything captured in step 1 is covered.
3. Appends that race with ``commit()`` may or may not be covered; they re-mark their log dirty via
   ``note_append`` and are confirmed only after a later commit. Only step 1's capture is confirmed.
4. If ``commit()`` raises (EIO, ENOSPC...), nothing captured is confirmed, and the failed log must be
   treated as failed and reopened (recovery decides what survived): after a failed fsync Linux may
   mark dirty pages clean, so retrying the fsync and believing it would be a lie.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol


def sync_data(fd: int) -> None:
    """Make a file's written data (and its size) durable. fdatasync skips unneeded metadata (mtime)."""
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:  # pragma: no cover - macOS / Windows
        os.fsync(fd)


def sync_directory(path: str | os.PathLike[str]) -> None:
    """Make created, renamed or deleted directory entries durable (a new segment is lost without it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a small file whole (temp file, fsync, rename, directory fsync): after a crash it holds
    either its old or its new contents, never a mix."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        sync_data(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_directory(path.parent)


def make_directories(path: str | os.PathLike[str]) -> list[Path]:
    """Create ``path`` and any missing parents; return the directories whose entries changed (the
    parent of each directory created, outermost first). They must be synced with ``sync_directory``
    before anything inside the new directory is confirmed, or a power cut can take the directory,
    and every confirmed record in it, away."""
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    path.mkdir(parents=True, exist_ok=True)
    return [created.parent for created in reversed(missing)]


def make_durable_directory(path: str | os.PathLike[str]) -> None:
    """Create ``path`` (and parents) and make the new entries durable at once: for directories made
    at start-up or on a rare declaration, where one directory fsync costs nothing that matters."""
    for parent in make_directories(path):
        sync_directory(parent)


class Syncable(Protocol):
    """What group commit drives: Log, MemoryLog and FaultyLog all satisfy it."""

    def fsync(self) -> int: ...


Mode = Literal["always", "never", "interval"]


@dataclass(frozen=True, slots=True)
class FsyncPolicy:
    """When appended records become durable: ``always`` (group commit every turn), ``interval:<ms>``,
    or ``never`` (page cache only: the user chose speed over surviving power loss)."""

    mode: Mode
    interval_ms: int = 0

    @classmethod
    def parse(cls, text: str) -> FsyncPolicy:
        value = text.strip().lower()
        if value in ("always", "never"):
            return cls(value)  # type: ignore[arg-type]
        if value.startswith("interval:"):
            raw = value.removeprefix("interval:")
            if not raw.isdigit() or int(raw) <= 0:
                raise ValueError(f"fsync interval must be a positive integer of ms, got {raw!r}")
            return cls("interval", int(raw))
        raise ValueError(f"fsync policy must be 'always', 'never' or 'interval:<ms>', got {text!r}")

    def __str__(self) -> str:
        return f"interval:{self.interval_ms}" if self.mode == "interval" else self.mode


class GroupCommit:
    """Collects dirty logs during a loop turn; ``commit()`` fsyncs each once. Thread-safe (see module)."""

    def __init__(self, policy: FsyncPolicy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._dirty: dict[int, Syncable] = {}  # id(log) -> log, in first-append order
        self._last_commit_ms: int | None = None
        self.commits = 0  # counters for metrics
        self.fsyncs = 0

    def note_append(self, log: Syncable) -> None:
        with self._lock:
            self._dirty.setdefault(id(log), log)

    @property
    def pending(self) -> bool:
        with self._lock:
            return bool(self._dirty)

    def noted(self) -> list[Syncable]:
        """The logs the next commit will fsync (the simulator records which became durable)."""
        with self._lock:
            return list(self._dirty.values())

    def due(self, now_ms: int) -> bool:
        """Should the caller commit now? ``always``: whenever something is dirty; ``interval``: when
        something is dirty and the interval has passed since the last commit; ``never``: never."""
        with self._lock:
            if not self._dirty or self.policy.mode == "never":
                return False
            if self.policy.mode == "always" or self._last_commit_ms is None:
                return True
            return now_ms - self._last_commit_ms >= self.policy.interval_ms

    def commit(self, now_ms: int | None = None) -> int:
        """Fsync every log noted since the last commit, once each; returns how many were fsynced.

        With ``never`` this only forgets the dirty set (returns 0): the page cache is the store.
        """
        with self._lock:
            logs = list(self._dirty.values())
            self._dirty.clear()
            if now_ms is not None:
                self._last_commit_ms = now_ms
        if self.policy.mode == "never":
            return 0
        done = 0
        try:
            for log in logs:
                log.fsync()
                done += 1
        except BaseException:
            with self._lock:  # the unsynced rest stays dirty; the failed log is the caller's to fail
                for log in logs[done + 1 :]:
                    self._dirty.setdefault(id(log), log)
            raise
        self.commits += 1
        self.fsyncs += done
        return done
