"""The node's commit pipeline without asyncio or threads: the simulator's shell around the same
bookkeeping the server's pipeline runs (``CommitTurns``, ferrymq.storage.turns), with fsync
``always``.

Only the *time* a commit takes is the simulator's: a commit starts at the end of the turn that needs
one, and its fsyncs run (``GroupCommit.commit``) when it completes, at a later step chosen by the
seed; a power cut may come first. Everything else (which turn a reply is held under, which turns a
commit covers, release in order) is the server's code.

The shell adds what only the oracle needs: ``synced_turn``, for each log, the last turn whose records
an fsync made durable.
"""

from __future__ import annotations

from collections.abc import Callable

from ferrymq.storage.commit import FsyncPolicy, Syncable
from ferrymq.storage.turns import CommitTurns, Writer


class SimCommit:
    """One per node incarnation."""

    def __init__(self) -> None:
        self.turns = CommitTurns(FsyncPolicy("always"))
        self.covers: int | None = None  # the turn the commit in flight covers
        self.synced_turn: dict[int, int] = {}  # id(log) -> every record written up to this turn is durable

    # --- what the front ends and queue logs call (as on CommitPipeline) ----------------------------

    @property
    def publish_pending(self) -> bool:
        return self.turns.publish_pending

    @publish_pending.setter
    def publish_pending(self, value: bool) -> None:  # queue logs set it (storage.queue_log.WriteSink)
        self.turns.publish_pending = value

    def note_dirty(self, writer: Writer) -> None:
        self.turns.note_dirty(writer)

    def note_append(self, lg: Syncable) -> None:
        self.turns.note_append(lg)

    def note_write_error(self) -> None:
        self.turns.note_write_error()

    def must_hold(self) -> bool:
        return self.turns.must_hold()

    def hold(self, alive: Callable[[], bool], send: Callable[[bool], None]) -> None:
        """``send(stored)`` once the commit covering this turn returns, if ``alive()`` still (the
        connection that asked outlived the power cut)."""
        self.turns.hold(lambda stored: send(stored) if alive() else None)

    def after_commit(self, run: Callable[[bool], None]) -> None:
        self.turns.after_commit(run)

    @property
    def turn(self) -> int:
        return self.turns.turn

    @property
    def settled(self) -> bool:
        """Nothing held and no commit in flight."""
        return not self.turns.held and self.covers is None

    # --- the end of a turn, and a commit's return --------------------------------------------------

    def end_of_turn(self) -> None:
        """Write every dirty queue log once; stream appends were written when they were made."""
        self.turns.close_turn()
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        if self.turns.next_action(0) == "commit":  # "always": never "wait"; the time does not matter
            self.covers = self.turns.start_commit()

    def complete_commit(self) -> bool:
        """The commit in flight returns (its fsyncs run now, so they also cover what was written
        since it started: the group-commit contract's step 3). False if none was in flight."""
        if self.covers is None:
            return False
        covers, self.covers = self.covers, None
        logs = self.turns.group.noted()
        fsyncs = self.turns.group.commit()
        for lg in logs:
            self.synced_turn[id(lg)] = self.turns.written_turn
        self.turns.committed(covers, fsyncs)
        self._maybe_commit()
        return True
