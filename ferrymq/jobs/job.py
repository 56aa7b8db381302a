"""A job: a function plus its options, that can be called in place or sent to a worker."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ferrymq.jobs.durations import Duration, maybe_ms
from ferrymq.jobs.message import JobMessage, new_id
from ferrymq.jobs.options import MAX_PRIORITY, JobOptions

if TYPE_CHECKING:
    from ferrymq.jobs.app import App


class Job:
    """What ``@app.job`` returns. Calling it runs the function here; ``send`` enqueues it."""

    def __init__(self, app: App, fn: Callable[..., Any], options: JobOptions) -> None:
        self.app = app
        self.fn = fn
        self.options = options
        self.name = options.name
        self.is_async = inspect.iscoroutinefunction(fn)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Job({self.name!r}, queue={self.options.queue!r})"

    def message(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None, *,
                delay: Duration | None = None, eta_ms: int | None = None, priority: int | None = None,
                key: str | None = None, tenant: str | None = None, queue: str | None = None,
                workflow: dict[str, Any] | None = None, id: str | None = None) -> JobMessage:
        """The message ``send`` would publish (nothing is sent)."""
        now = self.app.clock.now_ms()
        delay_ms = maybe_ms(delay)
        if eta_ms is None and delay_ms:
            eta_ms = now + delay_ms
        prio = self.options.priority if priority is None else priority
        if not 0 <= prio <= MAX_PRIORITY:
            raise ValueError(f"priority must be 0..{MAX_PRIORITY}, not {prio}")
        message = JobMessage(id or new_id(), self.name, queue or self.options.queue, list(args),
                             dict(kwargs or {}), 0, key, tenant, prio, now, eta_ms, workflow)
        message.body()  # raise SerializationError here, at the caller, not in a worker
        return message

    def send(self, *args: Any, delay: Duration | None = None, priority: int | None = None,
             key: str | None = None, tenant: str | None = None, **kwargs: Any) -> JobMessage:
        """Enqueue a run with these arguments; returns once the broker has confirmed it.
        ``delay``, ``priority``, ``key`` and ``tenant`` are options, not job arguments (use
        ``send_with_options`` for a job that takes arguments of those names)."""
        return self.app.enqueue(self.message(args, kwargs, delay=delay, priority=priority, key=key,
                                             tenant=tenant))

    def send_with_options(self, args: Iterable[Any] = (), kwargs: dict[str, Any] | None = None,
                          **options: Any) -> JobMessage:
        return self.app.enqueue(self.message(args, kwargs, **options))

    def send_many(self, calls: Iterable[tuple[Iterable[Any], dict[str, Any]] | Iterable[Any]],
                  **options: Any) -> list[JobMessage]:
        """Enqueue many runs in pipelined batches (one confirm wait per batch). Each call is an
        args tuple, or an (args, kwargs) pair."""
        messages = []
        for call in calls:
            pair = call if isinstance(call, tuple) and len(call) == 2 and isinstance(call[1], dict) else None
            args, kwargs = pair if pair is not None else (call, {})
            messages.append(self.message(args, kwargs, **options))
        return self.app.enqueue_many(messages)

