"""The running job's context: what a job or a middleware may ask about the run it is in.

``current`` reads the context of the job running on this thread (or asyncio task), so a job
reaches its transaction, progress and cancellation without taking a parameter for them.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from ferrymq.clock import Clock

if TYPE_CHECKING:
    from ferrymq.jobs.db import Database, Tx
    from ferrymq.jobs.message import JobMessage

_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("ferrymq_job")


class JobContext:
    __slots__ = ("app", "cancelled", "clock", "db", "message", "started_ms", "tx", "worker_id")

    def __init__(self, app: Any, worker_id: str, clock: Clock, db: Database | None,
                 message: JobMessage) -> None:
        self.app = app
        self.worker_id = worker_id
        self.clock = clock
        self.db = db
        self.message = message
        self.tx: Tx | None = None  # set by a middleware whose wrap opened a transaction
        self.cancelled = False
        self.started_ms = clock.now_ms()

    def progress(self, fraction: float, note: str = "") -> None:
        """Report how far the job is (0..1); stored when the app keeps job state."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress is a fraction 0..1, not {fraction}")
        report = getattr(self.app, "report_progress", None)
        if report is not None:
            report(self, fraction, note)


def enter(ctx: JobContext) -> contextvars.Token[JobContext]:
    return _current.set(ctx)


def leave(token: contextvars.Token[JobContext]) -> None:
    _current.reset(token)


class _Current:
    """``current.tx``, ``current.message``...: the attributes of the running job's context."""

    def __getattr__(self, name: str) -> Any:
        try:
            ctx = _current.get()
        except LookupError:
            raise RuntimeError("ferrymq.jobs.current is only set while a job runs") from None
        return getattr(ctx, name)


current: Any = _Current()
