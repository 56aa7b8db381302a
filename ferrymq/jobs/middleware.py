"""Middleware: hooks around a job's life, in Dramatiq's shape.

Every hook is a no-op here; a middleware overrides the ones it needs. The worker asks once which
middlewares override which hook (``HookTable``), so a job pays only for hooks that do something.
Before-hooks run in list order, after-hooks in reverse, and ``wrap`` nests the first middleware
outermost, so a middleware's after-hook sees the state its before-hook set up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.message import JobMessage

HOOKS = ("before_enqueue", "before_process", "wrap", "after_process", "after_retry", "after_dead",
         "after_worker_boot", "before_worker_shutdown")


class Middleware:
    def before_enqueue(self, app: Any, message: JobMessage) -> None:
        """May raise Skip(reason) to drop the send."""

    def before_process(self, ctx: JobContext, message: JobMessage) -> None:
        """May raise Skip (acknowledge without running) or Defer (put back, no attempt spent)."""

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        return call()

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        """Runs after every run, successful or not, before the retry/dead-letter decision."""

    def after_retry(self, ctx: JobContext, message: JobMessage, delay_ms: int, reason: str) -> None:
        """The job was republished for its next attempt."""

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        """The job went to its queue's dead letters."""

    def after_worker_boot(self, worker: Any) -> None:
        """A worker process is connected and about to consume."""

    def before_worker_shutdown(self, worker: Any) -> None:
        """A worker is draining."""


class HookTable:
    """For each hook, the bound methods of the middlewares that override it (in running order)."""

    def __init__(self, middleware: list[Middleware]) -> None:
        def overriding(hook: str) -> list[Any]:
            return [getattr(m, hook) for m in middleware
                    if getattr(type(m), hook) is not getattr(Middleware, hook)]

        self.before_enqueue = overriding("before_enqueue")
        self.before_process = overriding("before_process")
        self.wrap = overriding("wrap")
        self.after_process = overriding("after_process")[::-1]
        self.after_retry = overriding("after_retry")[::-1]
        self.after_dead = overriding("after_dead")[::-1]
        self.after_worker_boot = overriding("after_worker_boot")
        self.before_worker_shutdown = overriding("before_worker_shutdown")[::-1]

    def call_wrapped(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """``call`` inside every wrap, the first middleware outermost."""
        for wrap in reversed(self.wrap):
            call = _bind(wrap, ctx, message, call)
        return call()


def _bind(wrap: Any, ctx: JobContext, message: JobMessage, inner: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: wrap(ctx, message, inner)
