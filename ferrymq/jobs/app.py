"""The application object: jobs, queues with weights, middleware, the store and the clock."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ferrymq.clock import Clock, Rng, SystemClock
from ferrymq.jobs.broker import Publisher, QueueShape
from ferrymq.jobs.db import Database
from ferrymq.jobs.durations import Duration, maybe_ms, to_ms
from ferrymq.jobs.errors import Skip
from ferrymq.jobs.job import Job
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.middleware import HookTable, Middleware
from ferrymq.jobs.options import make_options
from ferrymq.jobs.tenants import check_fair_queue

DEFAULT_URL = "amqp://guest:guest@localhost:5672/%2F"
DEFAULT_WEIGHT = 50
ENQUEUE_BATCH = 1_000  # jobs per confirm wait in send_many
EAGER = "eager://"


class App:
    """``App(url)`` for a broker (FerryMQ or RabbitMQ), ``App("eager://")`` to run jobs in place
    (tests). ``queues`` maps queue names to weights: a worker serving several queues gives each
    a share of its slots proportional to its weight while all have work. ``lease`` (FerryMQ)
    bounds how long a frozen worker can hold a job before it is redelivered. ``fair_queues``
    names queues where one tenant's backlog cannot starve the others (``send(tenant=...)``)."""

    def __init__(self, url: str = DEFAULT_URL, *, store: str | Database | None = None,
                 clock: Clock | None = None, rng: Rng | None = None, seed: int | None = None,
                 queues: dict[str, int] | None = None,
                 priorities: bool = False, middleware: list[Middleware] | None = None,
                 lease: Duration | None = None, state: bool = False,
                 fair_queues: Iterable[str] = ()) -> None:
        self.url = url
        self.eager = url.startswith(EAGER)
        self.clock: Clock = clock or SystemClock()
        self.rng = rng or Rng(seed)
        self.seed = self.rng.seed_value
        self.db = Database(store) if isinstance(store, str) else store
        self.queues: dict[str, int] = dict(queues or {})
        self.priorities = priorities
        # Per-tenant fairness (tenants.py): a job sent with tenant= to one of these queues waits in
        # its tenant's own sub-queue, and workers take turns between the tenants.
        self.fair_queues = frozenset(fair_queues)
        for name in self.fair_queues:
            check_fair_queue(name)
            self.queues.setdefault(name, DEFAULT_WEIGHT)
        # On FerryMQ, a delivery not settled within its lease goes back to its queue; workers
        # extend the leases of what they hold, so only a frozen or cut-off worker loses its jobs.
        self.lease_ms = maybe_ms(lease)
        self.jobs: dict[str, Job] = {}
        self.schedules: list[Any] = []
        self.middleware: list[Middleware] = list(middleware or [])
        self.state: Any = None  # the StateMiddleware, with App(state=True) and a store
        self.results: Any = None
        if self.db is not None:
            self._default_middleware(self.db, state)
        elif state:
            raise ValueError("App(state=True) keeps job state in a store: give store=...")
        self._hooks: tuple[int, HookTable] | None = None
        self._publisher: Publisher | None = None
        self.eager_dead: list[tuple[JobMessage, dict[str, Any]]] = []  # eager mode's dead letters
        self.eager_reruns: list[tuple[JobMessage, int]] = []  # eager mode's retries, with their delays

    # --- definitions ---------------------------------------------------------------------

    def job(self, fn: Callable[..., Any] | None = None, *, name: str | None = None, **options: Any) -> Any:
        """``@app.job`` or ``@app.job(queue=..., retries=..., ...)``: see JobOptions."""
        def register(f: Callable[..., Any]) -> Job:
            job_name = name or f"{f.__module__}.{f.__qualname__}"
            if job_name in self.jobs:
                raise ValueError(f"a job named {job_name!r} is already defined")
            job = Job(self, f, make_options(job_name, **options))
            self.jobs[job_name] = job
            self.queues.setdefault(job.options.queue, DEFAULT_WEIGHT)
            return job
        return register(fn) if fn is not None else register

    def schedule(self, name: str, cron: str, tz: str = "UTC", missed: str = "skip", queue: str | None = None,
                 args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None) -> Callable[[Any], Job]:
        """Run a job on a cron schedule (one scheduler fires at a time; see scheduler.py)."""
        from ferrymq.jobs.scheduler import ScheduleSpec  # the scheduler is optional weight

        ScheduleSpec(name=name, cron=cron, tz=tz, missed=missed)  # a bad expression fails here, first

        def register(fn: Any) -> Job:
            where = {"queue": queue} if queue else {}
            job = fn if isinstance(fn, Job) else self.job(fn, name=name, **where)
            self.schedules.append(ScheduleSpec(name=name, cron=cron, tz=tz, missed=missed, job=job,
                                               args=tuple(args), kwargs=dict(kwargs or {})))
            return job
        return register

    def _default_middleware(self, db: Database, state: bool) -> None:
        """What a store gives: job state and audit trail (opt-in, first, so it sees every
        verdict), results and rate limits, exactly-once effects for keyed and idempotent jobs (its
        transaction wraps only the job call) and workflows (inside that transaction, last)."""
        from ferrymq.jobs.idempotency import IdempotencyMiddleware
        from ferrymq.jobs.ratelimit import RateLimitMiddleware
        from ferrymq.jobs.results import ResultsMiddleware
        from ferrymq.jobs.state import StateMiddleware

        have = {type(m) for m in self.middleware}
        if state and StateMiddleware not in have:
            self.state = StateMiddleware(db)
            self.middleware.insert(0, self.state)
        if ResultsMiddleware not in have:
            results = ResultsMiddleware(db)
            self.results = results.store  # app.results.get(job_id) / .wait(...)
            self.middleware.append(results)
        if RateLimitMiddleware not in have:
            self.middleware.append(RateLimitMiddleware(db))
        if IdempotencyMiddleware not in have:
            self.middleware.append(IdempotencyMiddleware(db))
        from ferrymq.jobs.workflows import WorkflowMiddleware  # inside the idempotency transaction: last

        flows: list[Middleware] = [m for m in self.middleware if isinstance(m, WorkflowMiddleware)] \
            or [WorkflowMiddleware(db)]
        self.middleware = [m for m in self.middleware if not isinstance(m, WorkflowMiddleware)] + flows

    def report_progress(self, ctx: Any, fraction: float, note: str) -> None:
        """``ctx.progress(...)``: kept in the state store when the app keeps job state."""
        if self.state is not None:
            self.state.report_progress(ctx, fraction, note)

    def add_middleware(self, middleware: Middleware) -> None:
        self.middleware.append(middleware)

    @property
    def hooks(self) -> HookTable:
        """The hook table for the current middleware list (rebuilt when the list changes)."""
        key = hash(tuple(id(m) for m in self.middleware))
        if self._hooks is None or self._hooks[0] != key:
            self._hooks = (key, HookTable(self.middleware))
        return self._hooks[1]

    def queue_shape(self) -> QueueShape:
        """How job queues are declared: x-max-priority on all (``priorities=True``) or on those
        with a job whose default priority is set; the delivery lease, if any."""
        priorities = True if self.priorities else frozenset(
            j.options.queue for j in self.jobs.values() if j.options.priority)
        return QueueShape(priorities, self.lease_ms, self.fair_queues)

    # --- sending -----------------------------------------------------------------------

    @property
    def publisher(self) -> Publisher:
        if self._publisher is None:
            self._publisher = Publisher(self.url, self.clock, self.queue_shape())
        return self._publisher

    def _admit(self, message: JobMessage) -> bool:
        try:
            for hook in self.hooks.before_enqueue:
                hook(self, message)
        except Skip as skip:
            message.skipped = skip.reason
            return False
        return True

    def enqueue(self, message: JobMessage) -> JobMessage:
        """Publish one job and wait for the broker's confirm."""
        if self._admit(message):
            if self.eager:
                from ferrymq.jobs.testing import run_eagerly

                run_eagerly(self, message)
            else:
                self.publisher.publish([(message, self.delay_of(message))])
        return message

    def enqueue_many(self, messages: list[JobMessage]) -> list[JobMessage]:
        admitted = [m for m in messages if self._admit(m)]
        for start in range(0, len(admitted), ENQUEUE_BATCH):
            batch = admitted[start:start + ENQUEUE_BATCH]
            if self.eager:  # admitted once above: run each in place without a second admission
                from ferrymq.jobs.testing import run_eagerly

                for message in batch:
                    run_eagerly(self, message)
            else:
                self.publisher.publish([(m, self.delay_of(m)) for m in batch])
        return messages

    def delay_of(self, message: JobMessage) -> int:
        return 0 if message.eta_ms is None else max(0, message.eta_ms - self.clock.now_ms())

    def publish_raw(self, message: JobMessage, delay_ms: int, dead: bool = False,
                    headers: dict[str, Any] | None = None) -> None:
        """Publish without the enqueue hooks: retries, deferrals and (``dead``) dead letters."""
        if self.eager:
            from ferrymq.jobs.testing import eager_publish

            eager_publish(self, message, delay_ms, dead, headers)
            return
        self.publisher.publish([(message, delay_ms)], dead, headers)

    def result(self, job_id: str, timeout: Duration | None = None) -> Any:
        """The stored result of a ``store_result=True`` job (raises its error if it went dead);
        with ``timeout``, wait that long for it."""
        if self.results is None:
            raise ValueError("results are kept in a store: App(store=...) and @app.job(store_result=True)")
        if timeout is None:
            return self.results.get(job_id, self.clock.now_ms())
        return self.results.wait(job_id, to_ms(timeout), self.clock)

    def cancel(self, job_id: str, reason: str = "") -> bool:
        """Cancel a job: a queued one is skipped when it comes up, a running one sees
        ``ctx.cancelled`` within about a second. Needs ``App(store=..., state=True)``."""
        if self.state is None:
            raise ValueError("cancellation is kept in the job state: App(store=..., state=True)")
        return bool(self.state.store.cancel(job_id, self.clock.now_ms(), reason))

    def retry_schedule(self, job: str, job_id: str) -> list[int]:
        """The delays (ms) a job would wait between its attempts if every one failed."""
        from ferrymq.jobs.retry import schedule

        return schedule(self.jobs[job].options, self.seed, job_id)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()


def load_app(spec: str) -> App:
    """``module:attribute`` (or ``module``, with an attribute named ``app``) to an App."""
    import importlib

    module_name, _, attr = spec.partition(":")
    module = importlib.import_module(module_name)
    app = getattr(module, attr or "app", None)
    if not isinstance(app, App):
        raise TypeError(f"{spec!r} is not a ferrymq.jobs.App (found {type(app).__name__})")
    return app

