"""One entry per job library: how its own client enqueues, and the worker command its users run.

A ``Lib`` client is built per broker URL and queue; ``send_noop(n)`` enqueues n argument-less jobs
and ``send_stamp(ns)`` one job carrying its enqueue time. Worker processes are started from the
argv below with the environment ``workers.spawn`` sets.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SEND_MANY_CHUNK = 1000  # ferrymq.jobs' send_many: jobs per confirmed batch


@dataclass
class Client:
    send_noop: Callable[[int], None]
    send_stamp: Callable[[int], None]
    close: Callable[[], None]
    how: str  # what "enqueue" meant for this library, for the report


@dataclass(frozen=True)
class Lib:
    name: str
    describe: str
    connect: Callable[[str, str], Client]
    worker_argv: Callable[[str, int], list[str]]
    available: Callable[[], bool]


def _per_job(app: Any, fns: dict[str, Any], method: str, how: str) -> Client:
    """A client that enqueues one job per call of its library's own ``method`` (send / delay)."""
    noop, stamp = getattr(fns["noop"], method), getattr(fns["stamp"], method)

    def send_noop(n: int) -> None:
        for _ in range(n):
            noop()

    return Client(send_noop, stamp, app.close, how)


def _dramatiq_client(url: str, queue: str) -> Client:
    from ferrymq.bench.jobs import dramatiq_app

    return _per_job(*dramatiq_app.make(url, queue), "send", "actor.send() per job (no confirms, persistent)")


def _celery_client(url: str, queue: str) -> Client:
    from ferrymq.bench.jobs import celery_app

    return _per_job(*celery_app.make(url, queue), "delay", "task.delay() per job (no confirms, persistent)")


def _ferrymq_client(url: str, queue: str) -> Client:
    from ferrymq.bench.jobs import ferrymq_app

    app, jobs = ferrymq_app.make(url, queue)
    noop, stamp = jobs["noop"], jobs["stamp"]
    many = getattr(noop, "send_many", None)

    def send_noop(n: int) -> None:
        if many is None:
            for _ in range(n):
                noop.send()
            return
        for start in range(0, n, SEND_MANY_CHUNK):
            many([((), {})] * min(SEND_MANY_CHUNK, n - start))

    how = (f"job.send_many() in chunks of {SEND_MANY_CHUNK} (confirmed)" if many else
           "job.send() per job (confirmed)")
    return Client(send_noop, stamp.send, app.close, how)


def _bin(name: str) -> str:
    """The console script next to this interpreter (the venv's), else one on PATH."""
    here = shutil.which(name, path=sys.prefix + "/bin")
    return here or shutil.which(name) or name


def _dramatiq_argv(queue: str, concurrency: int) -> list[str]:
    return [_bin("dramatiq"), "ferrymq.bench.jobs.dramatiq_app:broker", "--processes", "2",
            "--threads", str(concurrency or 8), "--queues", queue]


def _celery_argv(queue: str, concurrency: int) -> list[str]:
    return [_bin("celery"), "-A", "ferrymq.bench.jobs.celery_app", "worker", "--pool", "prefork",
            "--concurrency", str(concurrency or 2), "-Q", queue, "--loglevel", "WARNING"]


def _ferrymq_argv(queue: str, concurrency: int) -> list[str]:
    return [_bin("ferrymq"), "worker", "ferrymq.bench.jobs.ferrymq_app:app", "--processes", "2",
            "--concurrency", str(concurrency or 8), "--queues", queue, "--log-level", "warning"]


def _importable(module: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            __import__(module)
        except ImportError:
            return False
        return True
    return check


LIBS: dict[str, Lib] = {
    "ferrymq": Lib("ferrymq", "ferrymq.jobs, `ferrymq worker` 2 processes x 8 threads", _ferrymq_client,
                   _ferrymq_argv, _importable("ferrymq.jobs.app")),
    "dramatiq": Lib("dramatiq", "Dramatiq 2.2, RabbitmqBroker, 2 processes x 8 threads", _dramatiq_client,
                    _dramatiq_argv, _importable("dramatiq")),
    "celery": Lib("celery", "Celery 5.7, prefork, concurrency 2, acks_late off", _celery_client,
                  _celery_argv, _importable("celery")),
}


def versions() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mod in ("dramatiq", "celery", "kombu"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    return out
