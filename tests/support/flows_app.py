"""A job app for the workflow tests, run in-process (``build``) or in ``ferrymq worker`` processes
(``app``, configured by FERRYMQ_JOBS_URL, FERRYMQ_FLOWS_STORE and FERRYMQ_FLOWS_QUEUE).

Every run records itself (job, argument, pid) in the table ``flow_runs`` of the app's store,
through the step's own transaction (``current.tx``), so a count of runs is a count of committed
runs: what a test reads is what the workflow saw.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ferrymq.jobs import App, current
from ferrymq.jobs.workflows import WorkflowMiddleware

RUNS_DDL = ["CREATE TABLE IF NOT EXISTS flow_runs (job TEXT, arg TEXT, pid INTEGER, seq {bigint})"]


def record(job: str, arg: Any) -> None:
    tx = current.tx
    if tx is None:
        raise RuntimeError("workflow steps are keyed: IdempotencyMiddleware gives them a transaction")
    tx.execute("INSERT INTO flow_runs VALUES (?, ?, ?, ?)",
               (job, repr(arg), os.getpid(), time.monotonic_ns()))  # one clock for every process


def build(url: str, store: str, queue: str) -> App:
    app = App(url, store=store, queues={queue: 50})
    assert app.db is not None
    if not any(isinstance(m, WorkflowMiddleware) for m in app.middleware):  # until App adds it itself
        app.add_middleware(WorkflowMiddleware(app.db))
    app.db.create(RUNS_DDL)

    @app.job(name="add", queue=queue)
    def add(x: int, y: int) -> int:
        record("add", [x, y])
        return x + y

    @app.job(name="mul", queue=queue)
    def mul(x: int, y: int) -> int:
        record("mul", [x, y])
        return x * y

    @app.job(name="square", queue=queue)
    def square(x: int, pause_s: float = 0.0) -> int:
        time.sleep(pause_s)
        record("square", x)
        return x * x

    @app.job(name="collect", queue=queue)
    def collect(results: list[Any]) -> list[Any]:
        record("collect", results)
        return results

    @app.job(name="boom", queue=queue, retries=1, backoff=["1s"])
    def boom(x: int, *_previous: Any) -> int:
        record("boom", x)
        raise ValueError(f"boom {x}")

    @app.job(name="fatal_result", queue=queue)
    def fatal_result() -> Any:
        return {1, 2}  # a set is not JSON

    @app.job(name="gate", queue=queue, retries=0)
    def gate(path: str, value: int, *_previous: Any) -> int:
        """Waits for ``path`` to exist: holds a step running for as long as a test needs."""
        while not Path(path).exists():
            time.sleep(0.02)
        record("gate", value)
        return value

    @app.job(name="spawn", queue=queue)
    def spawn(n: int, on_failure: str) -> str:
        from ferrymq.jobs.workflows import group, sig

        members = [sig(app.jobs["square"], i) for i in range(n)] + [sig(app.jobs["boom"], -1)]
        return group(*members).send(app, on_failure=on_failure)

    return app


if "FERRYMQ_FLOWS_STORE" in os.environ:
    app = build(os.environ["FERRYMQ_JOBS_URL"], os.environ["FERRYMQ_FLOWS_STORE"],
                os.environ.get("FERRYMQ_FLOWS_QUEUE", "flows"))
