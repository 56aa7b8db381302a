"""One job run, start to verdict, with no sockets: decode, middleware, call, retry or dead-letter.

The worker's threads and the eager test mode both run jobs through ``Processor``; what differs is
only how the verdict reaches the broker. ``run`` returns an ``Outcome``; ``settle`` publishes a
retry, a deferral or a dead letter through the app's confirmed publisher and runs the hooks. The
caller acknowledges the original delivery only after ``settle`` returns, so a crash in between
gives a duplicate (same job id), never a loss.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from typing import TYPE_CHECKING, Any

from ferrymq.jobs import retry
from ferrymq.jobs.context import JobContext, enter, leave
from ferrymq.jobs.errors import Defer, Fatal, Retry, Skip
from ferrymq.jobs.message import JobMessage

if TYPE_CHECKING:
    from ferrymq.jobs.app import App
    from ferrymq.jobs.job import Job

log = logging.getLogger("ferrymq.jobs")

DONE, SKIPPED, RETRY, DEFER, DEAD = "done", "skipped", "retry", "defer", "dead"
HISTORY_MAX = 50  # attempts remembered on a message (its body carries them)


class Outcome:
    __slots__ = ("delay_ms", "error", "kind", "next", "reason")

    def __init__(self, kind: str, reason: str = "", delay_ms: int = 0, next_message: JobMessage | None = None,
                 error: BaseException | None = None) -> None:
        self.kind = kind
        self.reason = reason
        self.delay_ms = delay_ms
        self.next = next_message
        self.error = error


OUTCOME_DONE = Outcome(DONE)  # the common verdict costs no object


class Processor:
    def __init__(self, app: App, worker_id: str, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.app = app
        self.worker_id = worker_id
        self.hooks = app.hooks
        self.loop = loop  # where async jobs run (the worker's loop thread)
        self.current: JobContext | None = None  # the run in progress (cancellation reads it)

    def run(self, message: JobMessage) -> tuple[JobContext, Outcome]:
        ctx = self.current = JobContext(self.app, self.worker_id, self.app.clock, self.app.db, message)
        try:
            return self._run(ctx, message)
        finally:
            self.current = None

    def _run(self, ctx: JobContext, message: JobMessage) -> tuple[JobContext, Outcome]:
        job = self.app.jobs.get(message.job)
        if job is None:
            reason = f"unknown job {message.job!r}: no job of that name in this app"
            return ctx, self._dead(message, reason, None)
        token = enter(ctx)
        try:
            try:
                for before in self.hooks.before_process:
                    before(ctx, message)
            except Skip as skip:
                return ctx, Outcome(SKIPPED, skip.reason)
            except Defer as defer:
                return ctx, Outcome(DEFER, defer.reason, defer.after_ms, message)
            return ctx, self._call(ctx, job, message)
        finally:
            leave(token)

    def _call(self, ctx: JobContext, job: Job, message: JobMessage) -> Outcome:
        result: Any = None
        error: BaseException | None = None
        try:
            if self.hooks.wrap:
                result = self.hooks.call_wrapped(ctx, message, lambda: self._invoke(job, message))
            else:
                result = self._invoke(job, message)
        except Skip as skip:  # a wrap may decide late that the run is not needed
            return Outcome(SKIPPED, skip.reason)
        except Exception as exc:
            error = exc
        for after in self.hooks.after_process:
            _guarded(after, ctx, message, result, error)
        if error is None:
            return OUTCOME_DONE
        return self._failure(job, message, error)

    def _invoke(self, job: Job, message: JobMessage) -> Any:
        if not job.is_async:
            return job.fn(*message.args, **message.kwargs)
        coro = job.fn(*message.args, **message.kwargs)
        if self.loop is None:
            return asyncio.run(coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def _failure(self, job: Job, message: JobMessage, error: BaseException) -> Outcome:
        options, attempt = job.options, message.attempt
        log.warning("job %s %s failed on attempt %d: %r", job.name, message.id, attempt, error,
                    exc_info=not isinstance(error, Retry))
        if isinstance(error, Fatal):
            return self._dead(message, f"fatal: {error!r}", error)
        if not isinstance(error, Retry) and not retry.should_retry(options, attempt, error):
            why = "retries exhausted" if attempt >= options.retries else "not retryable"
            return self._dead(message, f"{why}: {error!r}", error)
        if attempt >= options.retries:
            return self._dead(message, f"retries exhausted: {error!r}", error)
        after = error.after_ms if isinstance(error, Retry) else None
        delay = retry.delay_ms(options, attempt, self.app.seed, message.id) if after is None else after
        extra = self._with_history(message, error)
        return Outcome(RETRY, repr(error), delay, message.retried(attempt + 1, extra), error)

    def _dead(self, message: JobMessage, reason: str, error: BaseException | None) -> Outcome:
        extra = self._with_history(message, error) if error is not None else dict(message.extra)
        return Outcome(DEAD, reason, 0, message.retried(message.attempt, extra), error)

    def _with_history(self, message: JobMessage, error: BaseException) -> dict[str, Any]:
        history = list(message.extra.get("history", ()))[-(HISTORY_MAX - 1):]
        history.append({"attempt": message.attempt, "error": repr(error), "at_ms": self.app.clock.now_ms(),
                        "worker": self.worker_id})
        return {**message.extra, "history": history}

    def settle(self, ctx: JobContext, outcome: Outcome) -> None:
        """Publish what the verdict needs (confirmed) and run its hooks; then the caller acks."""
        kind = outcome.kind
        if kind in (DONE, SKIPPED):
            return
        assert outcome.next is not None
        if kind == DEAD:
            self.app.publish_raw(outcome.next, 0, True, dead_headers(outcome))
            for hook in self.hooks.after_dead:
                _guarded(hook, ctx, outcome.next, outcome.reason)
            return
        self.app.publish_raw(outcome.next, outcome.delay_ms)
        if kind == RETRY:
            for hook in self.hooks.after_retry:
                _guarded(hook, ctx, outcome.next, outcome.delay_ms, outcome.reason)


def dead_headers(outcome: Outcome) -> dict[str, Any]:
    """What a dead letter says about why it died, readable in any AMQP console."""
    error = outcome.error
    trace = "".join(traceback.format_exception(error)) if error is not None else ""
    history = outcome.next.extra.get("history", []) if outcome.next is not None else []
    return {"x-job-error": outcome.reason[:4000], "x-job-traceback": trace[-16000:],
            "x-job-history": json.dumps(history)[:16000]}


def _guarded(hook: Any, *args: Any) -> None:
    """A middleware's after-hook that fails is logged; it never undoes the job's verdict."""
    try:
        hook(*args)
    except Exception:
        log.exception("middleware hook %s failed", getattr(hook, "__qualname__", hook))
