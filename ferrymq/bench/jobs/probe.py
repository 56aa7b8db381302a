"""What the job bodies record, and how the runner reads it, with nothing shared on the job path.

A job body appends one pair to a list private to its worker process (``list.append`` is atomic
under the GIL, so a worker's threads need no lock): (enqueued_ns, started_ns), both on the
system-wide ``CLOCK_MONOTONIC`` so they compare across processes. A daemon thread in each worker
process (started by the first job) wakes every ``FLUSH_S``, appends the new pairs to
``<dir>/<pid>.lat`` and rewrites ``<dir>/<pid>.count`` (count, first and last start times).
The runner sums the counts: a job is "done" when its body ran; the drain runs from the first
job's start to the last one's, read within ``FLUSH_S`` (5 ms against drains of seconds; a shorter
period cost the worker measurable CPU in its wake-ups).
No broker request, no file write and no lock per job; the body's own cost is ~0.2 µs.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

DIR_ENV = "FERRYMQ_JOBBENCH_DIR"
URL_ENV, QUEUE_ENV = "FERRYMQ_JOBBENCH_URL", "FERRYMQ_JOBBENCH_QUEUE"  # what the job modules serve
FLUSH_S = 0.005
COUNT = struct.Struct("<qqq")  # count, first_seen_ns, last_seen_ns

_pairs: list[tuple[int, int]] = []
_flushing = [False]  # this process's flusher runs; a forked child (Celery's prefork) starts its own
_lock = threading.Lock()
os.register_at_fork(after_in_child=lambda: _flushing.__setitem__(0, False))


def record(enqueued_ns: int = 0) -> None:
    """The whole job body: note that this job started (and when it was enqueued, if known)."""
    _pairs.append((enqueued_ns, time.monotonic_ns()))
    if not _flushing[0]:
        _start_flusher()


def noop() -> None:
    """Workload A's job (each library's job module registers this function as its job)."""
    record()


def stamp(enqueued_ns: int) -> None:
    """Workload B's job: carries the time its send() was called."""
    record(enqueued_ns)


def settings() -> tuple[str, str]:
    """The broker URL and queue a worker's job module is configured with (by ``workers.spawn``)."""
    return (os.environ.get(URL_ENV, "amqp://guest:guest@127.0.0.1:5672/%2F"),
            os.environ.get(QUEUE_ENV, "jobbench"))


def _start_flusher() -> None:
    with _lock:
        if _flushing[0]:
            return
        _flushing[0] = True
        threading.Thread(target=_flush_loop, args=(Path(os.environ[DIR_ENV]),), daemon=True,
                         name="jobbench-probe").start()


def _flush_loop(out: Path) -> None:
    pid = os.getpid()
    count_fd = os.open(out / f"{pid}.count", os.O_WRONLY | os.O_CREAT, 0o644)
    lat_fd = os.open(out / f"{pid}.lat", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    written, first = 0, 0
    while True:
        n = len(_pairs)
        if n > written:
            batch = _pairs[written:n]
            first = first or batch[0][1]
            os.write(lat_fd, array("q", [x for pair in batch for x in pair]).tobytes())
            os.pwrite(count_fd, COUNT.pack(n, first, max(p[1] for p in batch)), 0)
            written = n
        time.sleep(FLUSH_S)


@dataclass(frozen=True)
class Progress:
    done: int
    first_ns: int  # the first job's start (0: none yet)
    last_ns: int   # the latest job start flushed so far


def progress(out: Path) -> Progress:
    done, first, last = 0, 0, 0
    for f in out.glob("*.count"):
        raw = f.read_bytes()
        if len(raw) < COUNT.size:
            continue
        n, f0, f1 = COUNT.unpack_from(raw)
        done += n
        first = min(first, f0) if first else f0
        last = max(last, f1)
    return Progress(done, first, last)


def pairs(out: Path) -> list[tuple[int, int]]:
    """Every (enqueued_ns, started_ns) the worker processes flushed so far."""
    got: list[tuple[int, int]] = []
    for f in out.glob("*.lat"):
        flat = array("q")
        raw = f.read_bytes()
        flat.frombytes(raw[: len(raw) - len(raw) % 16])
        got.extend(zip(flat[0::2], flat[1::2]))
    return got
