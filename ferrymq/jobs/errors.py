"""What a job, a middleware or a send can raise, and what the worker does with each."""

from __future__ import annotations

from ferrymq.jobs.durations import Duration, to_ms


class JobError(Exception):
    """Base of the job system's own exceptions."""


class Retry(JobError):
    """Raised by a job: run it again, after ``after`` (a duration) or its backoff schedule.
    Spends an attempt, so the job's retry budget still bounds it."""

    def __init__(self, after: Duration | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.after_ms = None if after is None else to_ms(after)
        self.reason = reason or "retry requested"


class Fatal(JobError):
    """Raised by a job (or listed in ``fatal_on``): never retried, straight to the dead letters."""


class Skip(JobError):
    """From before_process: acknowledge without running. From before_enqueue: drop the send
    (``send()`` returns the message with ``skipped`` set)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Defer(JobError):
    """From before_process: put the job back with a delay without spending an attempt (a rate
    limit said 'not yet')."""

    def __init__(self, after_ms: int, reason: str = "deferred") -> None:
        super().__init__(reason)
        self.after_ms = max(0, int(after_ms))
        self.reason = reason


class SerializationError(JobError, TypeError):
    """Arguments that JSON cannot carry: raised by ``send()``, before anything reaches the broker."""


class UnknownJob(JobError, LookupError):
    """A message names a job this app does not define."""


class TimeLimitExceeded(JobError):
    """Raised inside a job that ran past its hard time limit (retryable like any error)."""


class SoftTimeLimitExceeded(JobError):
    """Raised inside a job that ran past its soft time limit: it may clean up and return."""
