"""Job threads, time limits and the event loop async jobs run on.

A job thread takes a delivery, decodes it, runs it to a verdict and reports the tag back to the
I/O thread. A message that cannot be decoded is dead-lettered with the reason (and acked) so a
bad message never stops a worker. Time limits are enforced by one watchdog thread that raises
``SoftTimeLimitExceeded`` and then ``TimeLimitExceeded`` inside the job's thread (as Dramatiq
does, with ``PyThreadState_SetAsyncExc``); code blocked in C sees it when it returns to Python.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from typing import TYPE_CHECKING

from ferrymq.jobs.broker import PublishError
from ferrymq.jobs.errors import SoftTimeLimitExceeded, TimeLimitExceeded
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.processor import Processor
from ferrymq.protocols.amqp.properties import Properties, encode_properties

if TYPE_CHECKING:
    from ferrymq.client.deliveries import Delivery
    from ferrymq.jobs.worker import Worker

log = logging.getLogger("ferrymq.jobs.worker")
WATCHDOG_TICK_S = 0.05


class JobThread(threading.Thread):
    def __init__(self, worker: Worker, n: int) -> None:
        super().__init__(name=f"ferrymq-job-{n}", daemon=True)
        self.worker = worker
        self.processor = Processor(worker.app, worker.worker_id, worker.loop.loop if worker.loop else None)
        self.limits = TimeLimits.for_worker(worker)

    def run(self) -> None:
        while True:
            try:
                if not self._next():
                    return
            except (SoftTimeLimitExceeded, TimeLimitExceeded):
                continue  # a limit that fired as its job was returning: nothing left to stop

    def _next(self) -> bool:
        worker = self.worker
        item = worker.tasks.get()
        if item is None:
            return False
        generation, deliveries = item
        for delivery in deliveries:
            if generation != worker.generation:  # its connection is gone: requeued already
                break
            requeue = False
            started = time.monotonic_ns()
            try:
                self._one(delivery)
            except PublishError as exc:
                log.warning("could not publish a job's verdict (%s): it goes back to its queue", exc)
                requeue = True
            except Exception:
                log.exception("job thread failed on a delivery; requeued")
                requeue = True
            worker.busy_ns += time.monotonic_ns() - started
            worker.timed += 1
            worker.job_finished(generation, delivery[1], requeue)
        return True

    def _one(self, delivery: Delivery) -> None:
        queue, _, redelivered, _, body = delivery
        try:
            message = JobMessage.from_body(body)
        except ValueError as exc:
            self._dead_letter_raw(queue, body, str(exc))
            return
        if redelivered:
            message.extra["redelivered"] = True
        self.limits.start(message)
        try:
            ctx, outcome = self.processor.run(message)
        finally:
            self.limits.finish()
        self.processor.settle(ctx, outcome)

    def _dead_letter_raw(self, queue: str, body: bytes, reason: str) -> None:
        """A body that is not a job goes, bytes unchanged, to the queue's DLQ with the reason."""
        log.warning("a message on %r is not a job (%s): dead-lettered", queue, reason)
        props = encode_properties(Properties(delivery_mode=2, headers={"x-job-error": reason}))
        self.worker.app.publisher.publish_bytes(queue, props, body)


class TimeLimits:
    """Soft then hard time limits for the jobs of one thread (None when no job has limits)."""

    def __init__(self, worker: Worker, watchdog: Watchdog) -> None:
        self.worker = worker
        self.watchdog = watchdog
        self.ident = 0

    @classmethod
    def for_worker(cls, worker: Worker) -> TimeLimits | NoLimits:
        if not any(j.options.timeout_ms or j.options.soft_timeout_ms for j in worker.app.jobs.values()):
            return NO_LIMITS
        if worker.watchdog is None:
            worker.watchdog = Watchdog(worker)
            worker.watchdog.start()
        return cls(worker, worker.watchdog)

    def start(self, message: JobMessage) -> None:
        job = self.worker.app.jobs.get(message.job)
        if job is None or not (job.options.timeout_ms or job.options.soft_timeout_ms):
            return
        now = self.worker.app.clock.monotonic_ms()
        soft = job.options.soft_timeout_ms
        hard = job.options.timeout_ms
        self.ident = threading.get_ident()
        self.watchdog.watch(self.ident, None if soft is None else now + soft,
                            None if hard is None else now + hard)

    def finish(self) -> None:
        if self.ident:
            self.watchdog.unwatch(self.ident)
            self.ident = 0


class NoLimits:
    def start(self, message: JobMessage) -> None:
        return None

    def finish(self) -> None:
        return None


NO_LIMITS = NoLimits()


class Watchdog(threading.Thread):
    def __init__(self, worker: Worker) -> None:
        super().__init__(name="ferrymq-job-time-limits", daemon=True)
        self.clock = worker.app.clock
        self._lock = threading.Lock()
        self._deadlines: dict[int, list[int | None]] = {}  # thread ident -> [soft, hard]

    def watch(self, ident: int, soft_ms: int | None, hard_ms: int | None) -> None:
        with self._lock:
            self._deadlines[ident] = [soft_ms, hard_ms]

    def unwatch(self, ident: int) -> None:
        with self._lock:
            self._deadlines.pop(ident, None)

    def run(self) -> None:
        while True:
            threading.Event().wait(WATCHDOG_TICK_S)
            now = self.clock.monotonic_ms()
            with self._lock:
                for ident, deadlines in self._deadlines.items():
                    for slot, exc in ((0, SoftTimeLimitExceeded), (1, TimeLimitExceeded)):
                        due = deadlines[slot]
                        if due is not None and now >= due:
                            deadlines[slot] = None
                            _raise_in(ident, exc)


def _raise_in(ident: int, exc: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc))


class AsyncLoop:
    """One event loop on its own thread for a worker's ``async def`` jobs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ferrymq-jobs-asyncio",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

