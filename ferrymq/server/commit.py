"""The one commit pipeline every front end shares: writes once per loop turn, one group commit off
the loop in one fsync thread, and replies held until the fsync that covers them has returned.

Why one: a stream log written by AMQP publishes and Kafka produces alike must be fsynced by one
thread, and a reply must mean the same thing whichever protocol sends it. The rule, under every
policy and for every front end (AMQP confirms and tx.commit-ok, Kafka produce and offset-commit
responses):

- ``always``: a reply waits for the group commit that covers its turn's writes (one per turn);
- ``interval:<ms>``: it waits for the next timed commit (at most one per ``<ms>``);
- ``never``: it leaves at once; stores that asked for fsync themselves (``x-fsync: always``
  queues) are still committed, and what is held waits for them.

One turn for every front end: during a loop turn front ends append (Kafka produce writes at once
and calls ``note_append``; AMQP queue and stream logs buffer and call ``note_dirty``) and ask for the
turn's end (``request_turn_end``). The turn's end runs once per loop turn: every attached front end
drains its effects (confirms and produce replies are held here), then every dirty store is written
once (``end_of_turn``) and a commit started if one is due, then every front end writes its
connections' output once. Replies are held under the turn they were drained in and released in
order when a commit covering that turn returns (``stored`` False if it failed: confirms become
nacks, produces KAFKA_STORAGE_ERROR).

Those decisions (turn numbers, held replies, what is due, the counters) are
``ferrymq.storage.turns.CommitTurns``, which the simulator drives too; ``CommitPipeline`` extends it
with the asyncio part only: the loop's turn end, the fsync thread and the interval timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from ferrymq.core.clock import Clock
from ferrymq.core.stats import commit_size, fsync_latency
from ferrymq.storage.commit import FsyncPolicy, Syncable
from ferrymq.storage.turns import CommitTurns, Writer

log = logging.getLogger("ferrymq.storage")


class FrontEnd(Protocol):
    """A listener whose turn the pipeline ends (the AMQP and Kafka servers)."""

    def drain(self) -> None:
        """Turn the turn's effects into output; replies that must wait go to ``hold``."""
        ...

    def write_out(self) -> None:
        """Write every connection's output once."""
        ...


class CommitPipeline(CommitTurns):
    """One per broker. Runs on the loop; only ``GroupCommit.commit`` runs in its thread. What is
    held, written and due is decided by ``CommitTurns`` (ferrymq.storage.turns), which this extends
    with the loop's turn end, the fsync thread and the interval timer. A subclass, not a wrapper: the
    per-message calls (``publish_pending``, ``note_stream_publish``, ``must_hold``) stay plain
    attribute and method lookups on the hot path."""

    def __init__(self, policy: FsyncPolicy, loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        super().__init__(policy)
        self.loop = loop
        self.clock = clock
        self.closed = False
        self._interval_timer: asyncio.TimerHandle | None = None
        self._turn_end_scheduled = False
        self._write_error_logged = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferrymq-fsync")
        self.front_ends: list[FrontEnd] = []
        self.fsync_latency = fsync_latency()  # us per group commit that fsynced something
        self.commit_size = commit_size()  # logs fsynced per group commit
        self._last_commit_us = 0  # set in the fsync thread, read on the loop after it returns

    def attach(self, front_end: FrontEnd) -> None:
        self.front_ends.append(front_end)

    # --- what the front ends call during a turn: the bookkeeping's, and the turn must end --------

    def note_dirty(self, writer: Writer) -> None:
        super().note_dirty(writer)
        self.request_turn_end()

    def note_append(self, lg: Syncable) -> None:
        super().note_append(lg)
        self.request_turn_end()

    def hold(self, send: Callable[[bool], None]) -> bool:
        """Run ``send(stored)`` once the commit covering this turn returns (at once if none waits)."""
        if not super().hold(send):
            return False
        self.request_turn_end()  # its turn must end (be written, covered) for it to leave
        return True

    def request_turn_end(self) -> None:
        """Something wants the turn's end (output, a write, a wake-up): once per loop turn."""
        if not self._turn_end_scheduled and not self.closed:
            self._turn_end_scheduled = True
            self.loop.call_soon(self.run_turn)

    # --- the end of a loop turn ------------------------------------------------------------------

    def run_turn(self) -> None:
        """Drain every front end, write and commit, then write every connection's output."""
        for fe in self.front_ends:
            fe.drain()
        self._turn_end_scheduled = False  # what the writes wake (fetches) is the next turn's
        self.end_of_turn()
        for fe in self.front_ends:
            fe.write_out()

    def end_of_turn(self) -> None:
        """Write every dirty store (one write each), then start a commit if one is due."""
        if self.closed:
            return
        self._log_write_errors(self.close_turn())
        self._maybe_commit()

    @property
    def last_commit_us(self) -> int:
        """How long the last group commit's fsyncs took (µs)."""
        return self._last_commit_us

    def _log_write_errors(self, errors: list[OSError]) -> None:
        """Once per run of failures (disk full): the failed stores stay dirty and replies wait."""
        if errors and not self._write_error_logged:
            log.error("log write failed (%s): replies wait until it succeeds", errors[0])
        self._write_error_logged = bool(errors)

    def retry_writes(self) -> None:
        """After a failed write (disk full), a timer retries; success releases the held replies."""
        if self.dirty:
            self.end_of_turn()

    def _maybe_commit(self) -> None:
        if self.closed:
            return
        action = self.next_action(self.clock.monotonic_ms())
        if action == "commit":
            self._start_commit()
        elif action == "wait" and self._interval_timer is None:
            self._interval_timer = self.loop.call_later(self.policy.interval_ms / 1000, self._on_interval)

    def _on_interval(self) -> None:
        """The interval has passed: commit what is pending (the timer is the interval's clock)."""
        self._interval_timer = None
        if self.group.pending and not self.in_flight and not self.closed:
            self._start_commit()
        else:
            self._maybe_commit()

    def _start_commit(self) -> None:
        covers = self.start_commit()
        fut = self._executor.submit(self._timed_commit, self.clock.monotonic_ms())
        fut.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._committed, f, covers))

    def _timed_commit(self, now_ms: int) -> int:
        """In the fsync thread: the group commit, timed on the pipeline's clock."""
        start = self.clock.monotonic_us()
        fsyncs = self.group.commit(now_ms)
        self._last_commit_us = self.clock.monotonic_us() - start
        return fsyncs

    def _committed(self, fut: Future[int], covers: int) -> None:
        exc = fut.exception()
        if exc is not None:  # after a failed fsync nothing it covered may be called stored
            log.error("fsync failed (%s): failing the replies it covered", exc)
        elif fut.result():  # observed on the loop thread: the scrape reads these histograms
            self.fsync_latency.observe(self._last_commit_us)
            self.commit_size.observe(fut.result())
        self.committed(covers, fut.result() if exc is None else None)
        self._maybe_commit()

    # --- shutdown --------------------------------------------------------------------------------

    def close(self) -> None:
        """Write and fsync what is pending (a clean stop loses nothing); stop the fsync thread."""
        if self.closed:
            return
        if self._interval_timer is not None:
            self._interval_timer.cancel()
        self._log_write_errors(self.write_dirty())  # write errors are returned, never raised
        self._executor.shutdown(wait=True)  # a commit in flight finishes first
        try:
            self.group.commit()
            # Everything written is now covered: what waited for a commit runs (a dead-letter
            # source's settles, ferrymq.storage.queue_log), and what it wrote is committed too.
            # Held replies are not sent: their connections are closed.
            self.release_after(self.turn, True)
            self._log_write_errors(self.write_dirty())
            self.group.commit()
        except OSError as exc:
            log.error("final commit failed: %s", exc)
        self.closed = True
        c = self.counters
        log.info("commit: %d writes, %d commits, %d fsyncs, %d replies held, %d write errors, "
                 "%d fsync errors", c["writes"], c["commits"], c["fsyncs"], c["replies_held"],
                 c["write_errors"], c["fsync_errors"])
