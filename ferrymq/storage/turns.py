"""The commit pipeline's bookkeeping without an event loop or a thread: which turn a reply belongs
to, which turns are written, when a commit is due, and which held replies a commit releases.

Why apart from the shell: the rule that no confirm or produce ack leaves before the fsync covering
it is decided here, and only here, so the asyncio pipeline (ferrymq.server.commit) and the
deterministic simulator (ferrymq.sim) run the same decisions. A shell (a subclass in the server, a
wrapper in the simulator) only supplies the event loop, the fsync thread and the interval timer, and
calls in this order:

1. during a turn: ``note_dirty`` / ``note_append`` / ``note_stream_publish``, ``hold(send)``;
2. at the turn's end: ``close_turn()`` (one write per dirty store), then ``next_action(now_ms)``;
3. on ``"commit"``: ``covers = start_commit()``, run ``group.commit`` (in a thread, or later in the
   simulator), then ``committed(covers, fsyncs)`` (``None`` if it raised) and ``next_action`` again;
   on ``"wait"``: arm a timer for the interval and ask ``next_action`` when it fires.

Replies are held under the turn they were drained in and released in order, ``send(True)`` once a
commit covering that turn returned, ``send(False)`` if it failed (nothing it covered may be called
stored). With nothing to commit, the held replies of every written turn go at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from ferrymq.storage.commit import FsyncPolicy, GroupCommit, Syncable

COUNTERS = ("writes", "write_errors", "commits", "fsyncs", "fsync_errors", "replies_held")
Send = Callable[[bool], None]
Action = Literal["commit", "wait", "idle"]


class Writer(Protocol):
    """A store that buffers a turn's records (a queue log, an AMQP stream handle)."""

    @property
    def log(self) -> Syncable: ...

    def write(self) -> bool:
        """Write the buffered records with one write; True if a commit must cover them."""
        ...


class CommitTurns:
    """One per broker (or simulated node): turn numbers, held replies, the counters."""

    def __init__(self, policy: FsyncPolicy) -> None:
        self.policy = policy
        # Under a broker-wide "never" only stores that asked for fsync are noted (x-fsync: always
        # queues), and they are committed at once.
        self.group = GroupCommit(policy if policy.mode != "never" else FsyncPolicy("always"))
        self.sync_streams = policy.mode != "never"  # do stream appends wait for an fsync?
        self.dirty: list[Writer] = []
        self.publish_pending = False  # something this turn must be committed before its reply
        self.turn = 1  # replies drained during this turn are held under this number
        self.written_turn = 0  # every turn up to this one has been written to the OS
        self.held: list[tuple[int, Send]] = []
        self.after: list[tuple[int, Send]] = []  # not replies: work that waits for a commit (after_commit)
        self.in_flight = False
        self.counters = dict.fromkeys(COUNTERS, 0)

    # --- during a turn -----------------------------------------------------------------------------

    def note_dirty(self, writer: Writer) -> None:
        """``writer`` has buffered records: write them at the end of this turn."""
        self.dirty.append(writer)

    def note_append(self, lg: Syncable) -> None:
        """A stream log was appended to (already written to the OS): commit it with this turn."""
        self.counters["writes"] += 1
        if self.sync_streams:
            self.group.note_append(lg)
            self.publish_pending = True

    def note_stream_publish(self) -> None:
        """An AMQP publish was buffered for a stream: under a syncing policy its confirm waits."""
        if self.sync_streams:
            self.publish_pending = True

    def note_write_error(self) -> None:
        self.counters["write_errors"] += 1

    def must_hold(self) -> bool:
        """Replies wait while a write is not yet covered by a commit (or older replies wait)."""
        return self.publish_pending or self.in_flight or bool(self.held)

    def hold(self, send: Send) -> bool:
        """Run ``send(stored)`` once the commit covering this turn returns; False if nothing had to
        wait and it ran at once."""
        if not self.must_hold():
            send(True)
            return False
        self.held.append((self.turn, send))
        self.counters["replies_held"] += 1
        return True

    def after_commit(self, run: Send) -> None:
        """``run(stored)`` once a commit covers this turn's writes, or at once if none has to: how a
        dead-letter source's settle waits for its target's publish (ferrymq.storage.queue_log)."""
        if self.must_hold():
            self.after.append((self.turn, run))
        else:
            run(True)

    # --- the end of a turn -------------------------------------------------------------------------

    def close_turn(self) -> list[OSError]:
        """Write every dirty store once and close the turn; returns the write errors (disk full):
        the failed stores stay dirty, and the turn counts as written only when none failed."""
        errors = self.write_dirty()
        if not errors:
            self.written_turn = self.turn
            self.publish_pending = False
        self.turn += 1
        return errors

    def write_dirty(self) -> list[OSError]:
        dirty, self.dirty = self.dirty, []
        failed: list[Writer] = []
        errors: list[OSError] = []
        for writer in dirty:
            try:
                if writer.write():
                    self.group.note_append(writer.log)
                self.counters["writes"] += 1
            except OSError as exc:
                failed.append(writer)
                errors.append(exc)
                self.counters["write_errors"] += 1
        self.dirty.extend(failed)
        return errors

    def next_action(self, now_ms: int) -> Action:
        """What the shell does now: start a commit, wait for the interval timer, or nothing (what
        is held for the written turns has been released, as no commit is needed for it)."""
        if self.in_flight:
            return "idle"
        if self.group.pending:
            if self.group.policy.mode == "always" or self.group.due(now_ms):
                return "commit"
            return "wait"
        self.release(self.written_turn, True)
        return "idle"

    # --- a commit --------------------------------------------------------------------------------

    def start_commit(self) -> int:
        """A commit starts: it covers every written turn (the group-commit contract's step 1)."""
        assert not self.in_flight
        self.in_flight = True
        return self.written_turn

    def committed(self, covers: int, fsyncs: int | None) -> None:
        """The commit returned having fsynced ``fsyncs`` logs, or raised (``None``): release what it
        covered, as stored or as failed."""
        self.in_flight = False
        if fsyncs is not None:
            self.counters["commits"] += 1
            self.counters["fsyncs"] += fsyncs
        else:
            self.counters["fsync_errors"] += 1
        self.release(covers, fsyncs is not None)

    def release(self, upto: int, ok: bool) -> None:
        _run_upto(self.held, upto, ok)
        self.release_after(upto, ok)

    def release_after(self, upto: int, ok: bool) -> None:
        """Run what ``after_commit`` held for the turns up to ``upto`` (no replies among it)."""
        _run_upto(self.after, upto, ok)


def _run_upto(waiting: list[Any], upto: int, ok: bool) -> None:
    """Call, in order, every ``(turn, callback)`` held for a turn up to ``upto``; drop them."""
    n = 0
    while n < len(waiting) and waiting[n][0] <= upto:
        waiting[n][1](ok)
        n += 1
    if n:
        del waiting[:n]
