"""Workflows: chain, group, chord (fan-in) and parent/child, kept in the job system's database.

    from ferrymq.jobs.workflows import Workflows, chain, chord, group, sig
    wf = chain(sig(fetch, url), sig(parse), sig(store)).send(app)          # parse(..., fetched)
    wf = chord([sig(resize, n) for n in range(50)], sig(collect)).send(app, on_failure="continue")
    Workflows(app.db).state(wf)   # {"state": "running", "steps": [{"state": "succeeded", ...}], ...}

A workflow is a small graph of steps in two tables (``ferrymq_workflows``, ``ferrymq_workflow_steps``).
Each step is a normal job message (``message.workflow = {"id": ..., "step": n}``, key
``wf:{id}:{n}``), so it is retried, dead-lettered and time-limited like any job. Nothing about a
workflow lives in a worker's memory or in the broker beyond the step messages themselves, so a
workflow survives worker and broker restarts: what is done is in the database, what is queued is
a persistent message.

``WorkflowMiddleware`` moves a workflow on. When a step succeeds it records the result and, in the
same transaction, marks the step done and decrements the ``waiting`` counter of every step that
takes it as input; a step whose counter reaches 0 is ready. The decrement is an ``UPDATE ...
RETURNING`` on the waiting step's row, serialised by the database (SQLite's BEGIN IMMEDIATE, a
PostgreSQL row lock), so when the last members of a group finish at once in different processes
exactly one of them sees 0 and enqueues the chord callback.

Ready steps are enqueued after that transaction commits (a publish cannot roll back with it),
then marked sent. A crash in between (or a publish that fails) leaves a done step whose
successors are ready but unsent: a redelivery of the done step, or any worker's boot
(``after_worker_boot`` sweeps running workflows for ready steps never marked sent), publishes
them again. Duplicates are harmless: every step message has a fixed id and key, a step that is
no longer pending is acknowledged without running, and ``IdempotencyMiddleware`` runs one key
once. (A redelivered done step is usually acknowledged by IdempotencyMiddleware before this
middleware sees it, which is why the boot sweep exists.)

When the step's job runs inside a transaction (``IdempotencyMiddleware`` opens one for every keyed
job, and step messages are keyed), the step's result is written in that transaction, so the job's
effects, its completed key and its place in the workflow commit together. For that the
WorkflowMiddleware must come after IdempotencyMiddleware in ``app.middleware`` (its ``wrap`` is
then inside); sending a workflow from an app in the other order fails with one clear error.

Failure policy (``send(app, on_failure=...)``), applied when a step is dead (out of retries, or
Fatal):

- ``"fail"`` (default): the workflow is failed, every step not yet started is cancelled (a queued
  message of a cancelled step is acknowledged without running), steps already running finish and
  are recorded but start nothing. Child workflows are cancelled; a child that fails this way
  fails its parent too.
- ``"continue"``: the dead step counts as finished with the result ``{"$failed": reason}``
  (``failed(value)`` tests for it): a chain's next step, or a chord's callback, still runs and gets
  that marker in place of the result. The workflow ends ``"partial"`` instead of ``"succeeded"``.

Results must be JSON: a step whose result is not fails with Fatal (and the policy applies).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ferrymq.jobs.db import SQLITE_BUSY_TIMEOUT_MS, Database, Tx
from ferrymq.jobs.errors import Fatal, Skip
from ferrymq.jobs.message import JobMessage, new_id
from ferrymq.jobs.middleware import Middleware

if TYPE_CHECKING:
    from ferrymq.jobs.context import JobContext
    from ferrymq.jobs.job import Job

log = logging.getLogger("ferrymq.jobs.workflows")

WORKFLOWS, STEPS = "ferrymq_workflows", "ferrymq_workflow_steps"
POLICIES = ("fail", "continue")
FAILED = "$failed"  # the result a dead step passes on under on_failure="continue"
PENDING, RUNNING, SUCCEEDED, FAILED_STATE, DEAD, CANCELLED = (
    "pending", "running", "succeeded", "failed", "dead", "cancelled")
FINISHED = (SUCCEEDED, DEAD, CANCELLED)
POLICY_ATTEMPTS = 3  # transactions tried to apply a dead step's failure policy
_DDL = [
    f"CREATE TABLE IF NOT EXISTS {WORKFLOWS} (id TEXT PRIMARY KEY, state TEXT NOT NULL,"
    " on_failure TEXT NOT NULL, parent TEXT, remaining INTEGER NOT NULL, created_ms {bigint} NOT NULL,"
    " finished_ms {bigint})",
    f"CREATE INDEX IF NOT EXISTS {WORKFLOWS}_parent ON {WORKFLOWS} (parent)",
    f"CREATE INDEX IF NOT EXISTS {WORKFLOWS}_state ON {WORKFLOWS} (state)",
    f"CREATE TABLE IF NOT EXISTS {STEPS} (workflow TEXT NOT NULL, step INTEGER NOT NULL, job TEXT NOT NULL,"
    " queue TEXT NOT NULL, priority INTEGER NOT NULL, args TEXT NOT NULL, kwargs TEXT NOT NULL,"
    " inputs TEXT NOT NULL, mode TEXT NOT NULL, children TEXT NOT NULL, waiting INTEGER NOT NULL,"
    " state TEXT NOT NULL, result TEXT, error TEXT, attempts INTEGER NOT NULL, updated_ms {bigint} NOT NULL,"
    " sent_ms {bigint},"
    " PRIMARY KEY (workflow, step))",
]
_created: weakref.WeakSet[Database] = weakref.WeakSet()
_spawned = threading.local()  # .messages: first steps of workflows a running job started
_STEP_PARAMS = ", ".join("?" * 12)
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def failed(value: Any) -> bool:
    """Whether a result passed on is the marker of a dead step (``on_failure="continue"``)."""
    return isinstance(value, dict) and len(value) == 1 and FAILED in value


# --- the canvas: what a user builds -------------------------------------------------------------


class _Canvas:
    def send(self, app: Any, *, on_failure: str = "fail", parent: str | None = None) -> str:
        """Store the workflow and enqueue its first steps; returns the workflow id. Inside a
        running workflow step, ``parent`` defaults to that step's workflow (a child workflow)."""
        return Workflows(_db_of(app)).start(app, self, on_failure=on_failure, parent=parent)


@dataclass(frozen=True)
class Signature(_Canvas):
    """One job call with some of its arguments; a chain appends the previous result to ``args``."""

    job: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    priority: int = 0


@dataclass(frozen=True)
class Chain(_Canvas):
    steps: tuple[_Canvas, ...]


@dataclass(frozen=True)
class Group(_Canvas):
    members: tuple[_Canvas, ...]


@dataclass(frozen=True)
class Chord(_Canvas):
    header: Group
    callback: _Canvas


def sig(job: Job, *args: Any, **kwargs: Any) -> Signature:
    """``job`` with these arguments, to place in a chain, group or chord."""
    options = job.options
    return Signature(options.name, options.queue, tuple(args), dict(kwargs), options.priority)


def chain(*steps: _Canvas) -> Chain:
    """Steps run one after another; each gets the previous one's result as its last argument (a
    group's results as a list, in member order)."""
    if not steps:
        raise ValueError("a chain needs at least one step")
    return Chain(tuple(steps))


def group(*members: _Canvas | Iterable[_Canvas]) -> Group:
    """Members run in parallel. ``group(a, b)`` or ``group([a, b])``."""
    flat = tuple(members[0]) if len(members) == 1 and not isinstance(members[0], _Canvas) else members
    if not flat or not all(isinstance(m, _Canvas) for m in flat):
        raise ValueError("a group needs at least one signature, chain, group or chord")
    return Group(tuple(flat))  # type: ignore[arg-type]


def chord(header: Group | Iterable[_Canvas], callback: _Canvas) -> Chord:
    """A group, then ``callback`` with the list of the members' results (in member order)."""
    return Chord(header if isinstance(header, Group) else group(list(header)), callback)


# --- planning: the canvas as a graph of steps ---------------------------------------------------


@dataclass
class _Step:
    signature: Signature
    inputs: list[int]  # the steps whose results this one takes, in order
    mode: str  # "none", "one" (append the one input's result) or "list" (append the list)
    children: list[int] = field(default_factory=list)


def plan(canvas: _Canvas) -> list[_Step]:
    """The steps of a canvas, numbered from 0, with their inputs and children."""
    steps: list[_Step] = []
    _plan(canvas, [], "none", steps)
    for n, step in enumerate(steps):
        for parent in step.inputs:
            steps[parent].children.append(n)
    return steps


def _plan(node: _Canvas, inputs: list[int], mode: str, out: list[_Step]) -> tuple[list[int], str]:
    """Add ``node``'s steps fed by ``inputs``; returns the steps that end it and how they feed on."""
    if isinstance(node, Signature):
        out.append(_Step(node, inputs, mode))
        return [len(out) - 1], "one"
    if isinstance(node, Chain):
        for step in node.steps:
            inputs, mode = _plan(step, inputs, mode, out)
        return inputs, mode
    if isinstance(node, Chord):
        return _plan(Chain((node.header, node.callback)), inputs, mode, out)
    if isinstance(node, Group):
        ends: list[int] = []
        for member in node.members:
            member_ends, _ = _plan(member, inputs, mode, out)
            if len(member_ends) != 1:
                raise ValueError("a group member must end in one step (join a nested group with a chord)")
            ends += member_ends
        return ends, "list"
    raise TypeError(f"not a workflow piece: {node!r} (use sig, chain, group or chord)")


# --- the store ----------------------------------------------------------------------------------


class Workflows:
    """Workflows and their steps on a ``Database`` (tables created on first use)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        if db not in _created:  # once per database: a job may start a workflow inside its transaction
            db.create(_DDL)
            _created.add(db)

    def start(self, app: Any, canvas: _Canvas, *, on_failure: str = "fail", parent: str | None = None) -> str:
        if on_failure not in POLICIES:
            raise ValueError(f"on_failure must be one of {', '.join(POLICIES)}, not {on_failure!r}")
        steps = plan(canvas)
        for step in steps:
            _check_json(step.signature)
        job_tx, job_workflow = _running_job(self.db)
        parent = parent if parent is not None else job_workflow
        wf, now = new_id(), app.clock.now_ms()
        if job_tx is not None:  # spawned by a job: it exists if and only if that job commits
            _spawned.messages = [*(getattr(_spawned, "messages", None) or []),
                                 *_insert(job_tx, wf, steps, on_failure, parent, now)]
            return wf
        with self.db.transaction() as tx:
            first = _insert(tx, wf, steps, on_failure, parent, now)
        _publish(app, self.db, first)
        return wf

    def state(self, workflow_id: str) -> dict[str, Any]:
        """The workflow, its steps (state, result, error, attempts) and its child workflows."""
        with _reading(self.db) as tx:
            row = tx.execute(f"SELECT state, on_failure, parent, created_ms, finished_ms FROM {WORKFLOWS} "
                             "WHERE id = ?", (workflow_id,)).fetchone()
            if row is None:
                raise KeyError(f"no workflow {workflow_id!r}")
            steps = tx.execute(f"SELECT step, job, state, result, error, attempts, children FROM {STEPS} "
                               "WHERE workflow = ? ORDER BY step", (workflow_id,)).fetchall()
            kids = tx.execute(f"SELECT id FROM {WORKFLOWS} WHERE parent = ? ORDER BY created_ms, id",
                              (workflow_id,)).fetchall()
        listed = [{"step": s[0], "job": s[1], "state": s[2], "result": _loads(s[3]), "error": s[4],
                   "attempts": s[5]} for s in steps]
        ends = [entry["result"] for entry, s in zip(listed, steps, strict=True) if s[6] == "[]"]
        return {"id": workflow_id, "state": row[0], "on_failure": row[1], "parent": row[2],
                "created_ms": row[3], "finished_ms": row[4], "steps": listed,
                "result": ends[0] if len(ends) == 1 else ends, "children": [k[0] for k in kids]}

    def cancel(self, workflow_id: str, now_ms: int) -> None:
        """Cancel a running workflow: steps not started never run; its children are cancelled too."""
        with self.db.transaction() as tx:
            _stop(tx, workflow_id, CANCELLED, now_ms)

    def ready_unstarted(self, now_ms: int) -> list[JobMessage]:
        """The messages of every ready step not yet started in a running workflow (the sweep)."""
        with self.db.transaction() as tx:
            rows = tx.execute(f"SELECT s.workflow, s.step FROM {STEPS} s JOIN {WORKFLOWS} w "
                              "ON w.id = s.workflow WHERE w.state = ? AND s.state = ? AND s.waiting = 0 "
                              "AND s.sent_ms IS NULL",
                              (RUNNING, PENDING)).fetchall()
            return [ready_message(tx, wf, n, now_ms) for wf, n in rows]


@contextmanager
def _reading(db: Database) -> Iterator[Tx]:
    """A read that never waits for a writer. On an SQLite file a keyed job holds the write lock
    for as long as it runs (its IdempotencyMiddleware transaction), so a state query reads on a
    connection of its own, which WAL lets see the last commit meanwhile."""
    parsed = urlparse(db.url)
    path = unquote(parsed.path[1:]) if db.dialect == "sqlite" and parsed.path.startswith("/") else ""
    if not path:
        with db.transaction() as tx:
            yield tx
        return
    conn = sqlite3.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute("BEGIN")
        yield Tx(conn.cursor(), False)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _db_of(app: Any) -> Database:
    """The app's store, when its middleware can run workflows; else one clear error."""
    if getattr(app, "db", None) is None:
        raise ValueError("workflows need a store: App(..., store='sqlite:///jobs.db') or a PostgreSQL URL")
    problem = middleware_problem(app.middleware)
    if problem is not None:
        raise ValueError(problem)
    db: Database = app.db
    return db


def middleware_problem(middleware: list[Middleware]) -> str | None:
    """Why workflows cannot run with this middleware list, or None. WorkflowMiddleware must be
    inside IdempotencyMiddleware's transaction: a step's result commits with its key, or a crash
    between the two commits would leave the step running forever (its redelivery skipped)."""
    from ferrymq.jobs.idempotency import IdempotencyMiddleware

    ours = [i for i, m in enumerate(middleware) if isinstance(m, WorkflowMiddleware)]
    if not ours:
        return "workflows need WorkflowMiddleware: app.add_middleware(WorkflowMiddleware(app.db))"
    idem = [i for i, m in enumerate(middleware) if isinstance(m, IdempotencyMiddleware)]
    if idem and idem[-1] > ours[0]:
        return ("WorkflowMiddleware must come after IdempotencyMiddleware in app.middleware "
                "(app.add_middleware(WorkflowMiddleware(app.db)) after creating the App)")
    return None


def _insert(tx: Tx, wf: str, steps: list[_Step], on_failure: str, parent: str | None,
            now: int) -> list[JobMessage]:
    """Store a workflow; the messages of its first steps."""
    tx.execute(f"INSERT INTO {WORKFLOWS} (id, state, on_failure, parent, remaining, created_ms) "
               "VALUES (?, ?, ?, ?, ?, ?)", (wf, RUNNING, on_failure, parent, len(steps), now))
    tx.executemany(f"INSERT INTO {STEPS} VALUES ({_STEP_PARAMS}, NULL, NULL, 0, ?, NULL)",
                   [_step_row(wf, n, s, now) for n, s in enumerate(steps)])
    return [ready_message(tx, wf, n, now) for n, s in enumerate(steps) if not s.inputs]


def _running_job(db: Database) -> tuple[Tx | None, str | None]:
    """The running job's transaction on ``db`` (if it has one) and its workflow id (if a step)."""
    from ferrymq.jobs.context import current

    try:
        message, tx, job_db = current.message, current.tx, current.db
    except RuntimeError:  # not inside a job
        return None, None
    workflow = message.workflow["id"] if message.workflow else None
    return (tx if job_db is db else None), workflow


def _check_json(signature: Signature) -> None:
    try:
        _dumps([signature.args, signature.kwargs])
    except (TypeError, ValueError) as exc:
        from ferrymq.jobs.errors import SerializationError

        raise SerializationError(
            f"job {signature.job!r}: arguments must be JSON-serialisable: {exc}") from None


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _step_row(wf: str, n: int, step: _Step, now: int) -> tuple[Any, ...]:
    s = step.signature
    return (wf, n, s.job, s.queue, s.priority, _dumps(list(s.args)), _dumps(s.kwargs), _dumps(step.inputs),
            step.mode, _dumps(step.children), len(step.inputs), PENDING, now)


def ready_message(tx: Tx, wf: str, n: int, now_ms: int) -> JobMessage:
    """Step ``n``'s job message, with its inputs' results appended to its arguments."""
    job, queue, priority, args, kwargs, inputs, mode = tx.execute(
        f"SELECT job, queue, priority, args, kwargs, inputs, mode FROM {STEPS} "
        "WHERE workflow = ? AND step = ?",
        (wf, n)).fetchone()
    call_args = json.loads(args)
    if mode != "none":
        wanted = json.loads(inputs)
        rows = dict(tx.execute(f"SELECT step, result FROM {STEPS} WHERE workflow = ? AND step IN "
                               f"({', '.join('?' * len(wanted))})", (wf, *wanted)).fetchall())
        results = [_loads(rows[i]) for i in wanted]
        call_args.append(results[0] if mode == "one" else results)
    return JobMessage(f"{wf}.{n}", job, queue, call_args, json.loads(kwargs), 0, f"wf:{wf}:{n}", None,
                      priority, now_ms, None, {"id": wf, "step": n})


# --- moving a workflow on -----------------------------------------------------------------------


def finish_step(tx: Tx, wf: str, n: int, state: str, result: str | None, error: str | None,
                now_ms: int) -> list[JobMessage] | None:
    """Mark a step finished (succeeded, or dead under "continue") and pass its result on; the
    messages of the steps that became ready. None when the step had already finished (a
    duplicate run): nothing is decided twice."""
    cur = tx.execute(f"UPDATE {STEPS} SET state = ?, result = ?, error = ?, updated_ms = ? "
                     f"WHERE workflow = ? AND step = ? AND state NOT IN (?, ?, ?) RETURNING children",
                     (state, result, error, now_ms, wf, n, *FINISHED))
    row = cur.fetchone()
    if row is None:
        return None
    wf_row = tx.execute(f"UPDATE {WORKFLOWS} SET remaining = remaining - 1 WHERE id = ? "
                        "RETURNING state, remaining", (wf,)).fetchone()
    if wf_row[0] != RUNNING:
        return []  # failed or cancelled meanwhile: record, start nothing
    ready = []
    for child in json.loads(row[0]):
        left = tx.execute(f"UPDATE {STEPS} SET waiting = waiting - 1 WHERE workflow = ? AND step = ? "
                          "RETURNING waiting, state", (wf, child)).fetchone()
        if left[0] == 0 and left[1] == PENDING:
            ready.append(ready_message(tx, wf, child, now_ms))
    if wf_row[1] == 0:
        _complete(tx, wf, now_ms)
    return ready


def _complete(tx: Tx, wf: str, now_ms: int) -> None:
    """End a workflow whose steps are all finished, once its children are: ``partial`` when a
    step died or a child did not succeed; then its parent may end too."""
    kids = dict(tx.execute(f"SELECT state, COUNT(*) FROM {WORKFLOWS} WHERE parent = ? GROUP BY state",
                           (wf,)).fetchall())
    if kids.get(RUNNING):
        return
    dead = tx.execute(f"SELECT COUNT(*) FROM {STEPS} WHERE workflow = ? AND state = ?",
                      (wf, DEAD)).fetchone()[0]
    unhappy = dead or sum(n for state, n in kids.items() if state != SUCCEEDED)
    row = tx.execute(f"UPDATE {WORKFLOWS} SET state = ?, finished_ms = ? WHERE id = ? AND state = ? "
                     "AND remaining = 0 RETURNING parent",
                     ("partial" if unhappy else SUCCEEDED, now_ms, wf, RUNNING)).fetchone()
    if row is not None and row[0] is not None:
        _complete(tx, row[0], now_ms)


def _stop(tx: Tx, wf: str, state: str, now_ms: int) -> None:
    """Fail or cancel a running workflow: cancel its unstarted steps and its children; a child that
    fails under "fail" takes its parent with it."""
    row = tx.execute(f"UPDATE {WORKFLOWS} SET state = ?, finished_ms = ? WHERE id = ? AND state = ? "
                     "RETURNING parent, on_failure", (state, now_ms, wf, RUNNING)).fetchone()
    if row is None:
        return
    tx.execute(f"UPDATE {STEPS} SET state = ?, updated_ms = ? WHERE workflow = ? AND state = ?",
               (CANCELLED, now_ms, wf, PENDING))
    for (child,) in tx.execute(f"SELECT id FROM {WORKFLOWS} WHERE parent = ? AND state = ?",
                               (wf, RUNNING)).fetchall():
        _stop(tx, child, CANCELLED, now_ms)
    if row[0] is None:
        return
    if state == FAILED_STATE and row[1] == "fail":
        _stop(tx, row[0], FAILED_STATE, now_ms)
    else:
        _complete(tx, row[0], now_ms)  # the parent may have been waiting only for this child


def step_died(tx: Tx, wf: str, n: int, reason: str, now_ms: int) -> list[JobMessage]:
    """Apply the workflow's failure policy to a dead step; the messages of steps made ready."""
    row = tx.execute(f"SELECT on_failure FROM {WORKFLOWS} WHERE id = ?", (wf,)).fetchone()
    if row is None:
        return []
    if row[0] == "continue":
        return finish_step(tx, wf, n, DEAD, _dumps({FAILED: reason}), reason, now_ms) or []
    tx.execute(f"UPDATE {STEPS} SET state = ?, error = ?, updated_ms = ? WHERE workflow = ? AND step = ? "
               f"AND state NOT IN (?, ?, ?)", (DEAD, reason, now_ms, wf, n, *FINISHED))
    _stop(tx, wf, FAILED_STATE, now_ms)
    return []


class WorkflowMiddleware(Middleware):
    """Moves workflows on as their steps run (see the module docstring). Add it after
    IdempotencyMiddleware: ``app.add_middleware(WorkflowMiddleware(app.db))``."""

    def __init__(self, db: Database) -> None:
        self.store = Workflows(db)
        self.db = db
        self._local = threading.local()  # (message id, ready messages): from wrap to after_process

    def after_worker_boot(self, worker: Any) -> None:
        """Publish ready steps a crash left unsent (see the module docstring)."""
        problem = middleware_problem(worker.app.middleware)
        if problem is not None:  # senders get it as an error; a worker says it and goes on
            log.error("%s: workflow steps may stall in this worker", problem)
        # raw: the enqueue-key claim of a step a crash left unsent may be that crashed send's
        _publish(worker.app, self.db, self.store.ready_unstarted(worker.app.clock.now_ms()), raw=True)

    def before_process(self, ctx: JobContext, message: JobMessage) -> None:
        if not message.workflow:
            return
        wf, n = message.workflow["id"], message.workflow["step"]
        with self.db.transaction() as tx:
            row = tx.execute(f"SELECT s.state, w.state FROM {STEPS} s JOIN {WORKFLOWS} w "
                             "ON w.id = s.workflow WHERE s.workflow = ? AND s.step = ?", (wf, n)).fetchone()
            if row is None:
                raise Skip(f"workflow {wf} step {n} is not in this app's store")
            step_state, wf_state = row
            if step_state == PENDING and wf_state != RUNNING:
                tx.execute(f"UPDATE {STEPS} SET state = ? WHERE workflow = ? AND step = ?",
                           (CANCELLED, wf, n))
                step_state = CANCELLED
            if step_state in FINISHED:
                resend = _resend(tx, wf, n, ctx.clock.now_ms()) if step_state != CANCELLED else []
            else:
                tx.execute(f"UPDATE {STEPS} SET state = ?, attempts = attempts + 1, updated_ms = ? "
                           "WHERE workflow = ? AND step = ?", (RUNNING, ctx.clock.now_ms(), wf, n))
                return
        _publish(ctx.app, self.db, resend, raw=True)
        raise Skip(f"workflow step {step_state}")

    def wrap(self, ctx: JobContext, message: JobMessage, call: Callable[[], Any]) -> Any:
        """Run the step, then record its result in the job's transaction (or one of its own)."""
        result = call()
        if not message.workflow:
            return result
        try:
            encoded = _dumps(result)
        except (TypeError, ValueError) as exc:
            raise Fatal(f"a workflow step's result must be JSON: {exc}") from None
        wf, n, now = message.workflow["id"], message.workflow["step"], ctx.clock.now_ms()
        if ctx.tx is not None:
            ready = finish_step(ctx.tx, wf, n, SUCCEEDED, encoded, None, now)
        else:
            with self.db.transaction() as tx:
                ready = finish_step(tx, wf, n, SUCCEEDED, encoded, None, now)
        self._local.ready = (message.id, ready or [])
        return result

    def after_process(self, ctx: JobContext, message: JobMessage, result: Any = None,
                      exception: BaseException | None = None) -> None:
        """After the commit: enqueue what the step made ready, and what the job spawned."""
        spawned = getattr(_spawned, "messages", None)
        if message.workflow is None and spawned is None:
            return  # the common case: a plain job
        stash = getattr(self._local, "ready", None)
        self._local.ready = _spawned.messages = None
        if exception is not None:
            return  # the job's transaction rolled back: nothing it decided or spawned exists
        _publish(ctx.app, self.db, spawned or [])
        if stash is not None and stash[0] == message.id:
            _publish(ctx.app, self.db, stash[1])

    def after_retry(self, ctx: JobContext, message: JobMessage, delay_ms: int, reason: str) -> None:
        if message.workflow:
            wf, n = message.workflow["id"], message.workflow["step"]
            with self.db.transaction() as tx:
                tx.execute(f"UPDATE {STEPS} SET state = ?, error = ?, updated_ms = ? WHERE workflow = ? "
                           "AND step = ? AND state = ?",
                           (FAILED_STATE, reason, ctx.clock.now_ms(), wf, n, RUNNING))

    def after_dead(self, ctx: JobContext, message: JobMessage, reason: str) -> None:
        """Apply the failure policy. Retried on a database error (a PostgreSQL deadlock between a
        parent and a child ending at once): no later event would apply it for this step."""
        if not message.workflow:
            return
        wf, n = message.workflow["id"], message.workflow["step"]
        for attempt in range(1, POLICY_ATTEMPTS + 1):
            try:
                with self.db.transaction() as tx:
                    ready = step_died(tx, wf, n, reason, ctx.clock.now_ms())
                break
            except Exception:
                if attempt == POLICY_ATTEMPTS:
                    raise
                log.warning("workflow %s step %d: failure policy not applied, retrying", wf, n, exc_info=True)
        _publish(ctx.app, self.db, ready)


def _resend(tx: Tx, wf: str, n: int, now_ms: int) -> list[JobMessage]:
    """A finished step delivered again: its successors that are ready and unstarted (a crash may
    have come between the step's commit and their publish)."""
    row = tx.execute(f"SELECT w.state, s.children FROM {STEPS} s JOIN {WORKFLOWS} w ON w.id = s.workflow "
                     "WHERE s.workflow = ? AND s.step = ?", (wf, n)).fetchone()
    if row[0] != RUNNING:
        return []
    children: Sequence[int] = json.loads(row[1])
    return [ready_message(tx, wf, c, now_ms) for c in children
            if tx.execute(f"SELECT 1 FROM {STEPS} WHERE workflow = ? AND step = ? AND state = ? "
                          "AND waiting = 0", (wf, c, PENDING)).fetchone()]


def _publish(app: Any, db: Database, messages: list[JobMessage], raw: bool = False) -> None:
    """Publish step messages (confirmed), then mark them sent: the boot sweep resends only steps
    never marked (a crash between a commit and its publish), so it does not copy queued steps."""
    if not messages:
        return
    if raw:
        for message in messages:
            app.publish_raw(message, 0)
    elif getattr(app, "eager", False):  # App.enqueue_many in eager mode admits each message twice
        for message in messages:
            app.enqueue(message)
    else:
        app.enqueue_many(messages)
    sent = [(app.clock.now_ms(), m.workflow["id"], m.workflow["step"]) for m in messages
            if m.skipped is None and m.workflow]
    if sent:
        with db.transaction() as tx:
            tx.executemany(f"UPDATE {STEPS} SET sent_ms = ? WHERE workflow = ? AND step = ?", sent)
