"""``ferrymq worker app_module:app``: run workers for an app.

Also runnable as ``python -m ferrymq.jobs.cli`` (what the supervisor starts its children with).
A job module that fails to import stops here with one line naming the module and the error.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import Annotated

import typer

from ferrymq.jobs.app import App, load_app
from ferrymq.jobs.supervisor import Supervisor
from ferrymq.jobs.worker import Worker, WorkerConfig


def load_or_exit(spec: str) -> App:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # `ferrymq worker myapp:app` finds myapp.py here, as Celery does
    try:
        return load_app(spec)
    except Exception as exc:
        typer.echo(f"ferrymq worker: cannot load {spec!r}: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


def worker(
    app_spec: Annotated[str, typer.Argument(help="module:attribute of the App, e.g. myapp:app")],
    processes: Annotated[int, typer.Option(help="Worker processes (each with its own threads).")] = 1,
    concurrency: Annotated[int, typer.Option(help="Job threads per process.")] = 8,
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues (default: all).")] = None,
    prefetch: Annotated[int | None, typer.Option(help="Deliveries held per queue.")] = None,
    max_tasks: Annotated[int | None, typer.Option(help="Restart a process after this many jobs.")] = None,
    max_memory_mb: Annotated[int | None, typer.Option(help="Restart a process past this peak RSS.")] = None,
    drain_timeout: Annotated[float, typer.Option(help="Seconds to finish running jobs on SIGTERM.")] = 30.0,
    no_scheduler: Annotated[bool, typer.Option("--no-scheduler", help="Run no cron schedules.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    child_index: Annotated[int | None, typer.Option(hidden=True)] = None,
) -> None:
    """Run job workers: processes x threads, draining on SIGTERM."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(process)d %(name)s: %(message)s")
    app = load_or_exit(app_spec)
    if metrics_port is not None:
        from ferrymq.jobs.metrics import serve_worker_metrics

        serve_worker_metrics(app, metrics_port, supervisor=processes > 1, child=child_index is not None)
    if processes > 1:
        argv = [app_spec, "--concurrency", str(concurrency), "--drain-timeout", str(drain_timeout),
                "--log-level", log_level]
        for flag, value in (("--queues", queues), ("--prefetch", prefetch), ("--max-tasks", max_tasks),
                            ("--max-memory-mb", max_memory_mb), ("--metrics-port", metrics_port)):
            if value is not None:
                argv += [flag, str(value)]
        if no_scheduler:
            argv.append("--no-scheduler")
        raise typer.Exit(Supervisor(argv, processes).run())
    config = WorkerConfig(concurrency=concurrency, queues=queues.split(",") if queues else None,
                          prefetch=prefetch, max_tasks=max_tasks, max_memory_mb=max_memory_mb,
                          drain_timeout_ms=int(drain_timeout * 1000))
    run_worker(app, config, scheduler=not no_scheduler and child_index in (None, 0))


def run_worker(app: App, config: WorkerConfig, scheduler: bool) -> None:
    """One worker in this process, in the main thread, until SIGTERM/SIGINT or recycling."""
    config.scheduler = scheduler and bool(app.schedules)
    running = Worker(app, config)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        running.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stop_scheduler = threading.Event()
    if scheduler and app.schedules:
        from ferrymq.jobs.scheduler import Scheduler

        try:
            cron = Scheduler(app)
        except ValueError as exc:  # e.g. schedules but no store to hold the leader lease
            typer.echo(f"ferrymq worker: {exc}", err=True)
            raise typer.Exit(1) from None
        threading.Thread(target=cron.run, args=(stop_scheduler,), name="ferrymq-jobs-scheduler",
                         daemon=True).start()
    try:
        running.run()
    finally:
        stop_scheduler.set()


def main() -> None:
    typer.run(worker)


if __name__ == "__main__":
    main()
