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
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from ferrymq.core.clock import Clock
from ferrymq.storage.commit import FsyncPolicy, GroupCommit, Syncable

log = logging.getLogger("ferrymq.storage")

COUNTERS = ("writes", "write_errors", "commits", "fsyncs", "fsync_errors", "replies_held")


class Writer(Protocol):
    """A store that buffers a turn's records (a queue log, an AMQP stream handle)."""

    @property
    def log(self) -> Syncable: ...

    def write(self) -> bool:
        """Write the buffered records with one write; True if a commit must cover them."""
        ...


class FrontEnd(Protocol):
    """A listener whose turn the pipeline ends (the AMQP and Kafka servers)."""

    def drain(self) -> None:
        """Turn the turn's effects into output; replies that must wait go to ``hold``."""
        ...

    def write_out(self) -> None:
        """Write every connection's output once."""
        ...


class CommitPipeline:
    """One per broker. Runs on the loop; only ``GroupCommit.commit`` runs in its thread."""

    def __init__(self, policy: FsyncPolicy, loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
        self.policy = policy
        self.loop = loop
        self.clock = clock
        # Under a broker-wide "never" only stores that asked for fsync are noted (x-fsync: always
        # queues), and they are committed at once.
        self.group = GroupCommit(policy if policy.mode != "never" else FsyncPolicy("always"))
        self.sync_streams = policy.mode != "never"  # do stream appends wait for an fsync?
        self.dirty: list[Writer] = []
        self.publish_pending = False  # something this turn must be committed before its reply
        self.turn = 1  # replies drained during this turn are held under this number
        self.written_turn = 0  # every turn up to this one has been written to the OS
        self.held: list[tuple[int, Callable[[bool], None]]] = []
        self.in_flight = False
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.closed = False
        self._interval_timer: asyncio.TimerHandle | None = None
        self._turn_end_scheduled = False
        self._write_error_logged = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="ferrymq-fsync")
        self.front_ends: list[FrontEnd] = []

    def attach(self, front_end: FrontEnd) -> None:
        self.front_ends.append(front_end)

    # --- what the front ends call during a turn --------------------------------------------------

    def note_dirty(self, writer: Writer) -> None:
        """``writer`` has buffered records: write them at the end of this turn."""
        self.dirty.append(writer)
        self.request_turn_end()

    def note_append(self, lg: Syncable) -> None:
        """A stream log was appended to (already written to the OS): commit it with this turn."""
        self.counters["writes"] += 1
        if self.sync_streams:
            self.group.note_append(lg)
            self.publish_pending = True
        self.request_turn_end()

    def note_stream_publish(self) -> None:
        """An AMQP publish was buffered for a stream: under a syncing policy its confirm waits."""
        if self.sync_streams:
            self.publish_pending = True

    def note_write_error(self) -> None:
        self.counters["write_errors"] += 1

    def must_hold(self) -> bool:
        """Replies wait while a write is not yet covered by a commit (or older replies wait)."""
        return self.publish_pending or self.in_flight or bool(self.held)

    def hold(self, send: Callable[[bool], None]) -> None:
        """Run ``send(stored)`` once the commit covering this turn returns (at once if none waits)."""
        if not self.must_hold():
            send(True)
            return
        self.held.append((self.turn, send))
        self.counters["replies_held"] += 1
        self.request_turn_end()  # its turn must end (be written, covered) for it to leave

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
        if self._write_dirty():
            self.written_turn = self.turn
            self.publish_pending = False
        self.turn += 1
        self._maybe_commit()

    def _write_dirty(self) -> bool:
        """False if a write failed (disk full): the failed stores stay dirty and replies wait."""
        dirty, self.dirty = self.dirty, []
        failed: list[Writer] = []
        for writer in dirty:
            try:
                if writer.write():
                    self.group.note_append(writer.log)
                self.counters["writes"] += 1
            except OSError as exc:
                failed.append(writer)
                self.counters["write_errors"] += 1
                if not self._write_error_logged:
                    log.error("log write failed (%s): replies wait until it succeeds", exc)
                    self._write_error_logged = True
        if failed:
            self.dirty.extend(failed)
            return False
        self._write_error_logged = False
        return True

    def retry_writes(self) -> None:
        """After a failed write (disk full), a timer retries; success releases the held replies."""
        if self.dirty:
            self.end_of_turn()

    def _maybe_commit(self) -> None:
        if self.in_flight or self.closed:
            return
        mode = self.group.policy.mode
        if self.group.pending and mode == "always":
            self._start_commit()
        elif self.group.pending and mode == "interval":
            if self.group.due(self.clock.monotonic_ms()):
                self._start_commit()
            elif self._interval_timer is None:
                self._interval_timer = self.loop.call_later(self.policy.interval_ms / 1000, self._on_interval)
        else:
            self._release(self.written_turn, True)

    def _on_interval(self) -> None:
        """The interval has passed: commit what is pending (the timer is the interval's clock)."""
        self._interval_timer = None
        if self.group.pending and not self.in_flight and not self.closed:
            self._start_commit()
        else:
            self._maybe_commit()

    def _start_commit(self) -> None:
        covers = self.written_turn
        self.in_flight = True
        fut = self._executor.submit(self.group.commit, self.clock.monotonic_ms())
        fut.add_done_callback(lambda f: self.loop.call_soon_threadsafe(self._committed, f, covers))

    def _committed(self, fut: Future[int], covers: int) -> None:
        self.in_flight = False
        exc = fut.exception()
        if exc is None:
            self.counters["commits"] += 1
            self.counters["fsyncs"] += fut.result()
            self._release(covers, True)
        else:  # after a failed fsync nothing it covered may be called stored
            self.counters["fsync_errors"] += 1
            log.error("fsync failed (%s): failing the replies it covered", exc)
            self._release(covers, False)
        self._maybe_commit()

    def _release(self, upto: int, ok: bool) -> None:
        held = self.held
        n = 0
        while n < len(held) and held[n][0] <= upto:
            held[n][1](ok)
            n += 1
        if n:
            del held[:n]

    # --- shutdown --------------------------------------------------------------------------------

    def close(self) -> None:
        """Write and fsync what is pending (a clean stop loses nothing); stop the fsync thread."""
        if self.closed:
            return
        if self._interval_timer is not None:
            self._interval_timer.cancel()
        try:
            self._write_dirty()
            self._executor.shutdown(wait=True)
            self.group.commit()
        except OSError as exc:
            log.error("final commit failed: %s", exc)
        self.closed = True
        self._executor.shutdown(wait=True)
        c = self.counters
        log.info("commit: %d writes, %d commits, %d fsyncs, %d replies held, %d write errors, "
                 "%d fsync errors", c["writes"], c["commits"], c["fsyncs"], c["replies_held"],
                 c["write_errors"], c["fsync_errors"])
