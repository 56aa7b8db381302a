"""The node's commit pipeline without asyncio or threads: the sim's stand-in for the server's
durability shell (ferrymq/server/durability.py), which is tied to an event loop and an executor.

It keeps the same rules, so the simulator tests them: queue logs are written once per turn; a
confirm (or produce / offset-commit ack) drained while anything durable is pending is held under the
current turn; a commit captures the last written turn when it starts and, when it completes, releases
the held replies of every turn it covers, in order. Only the *time* a commit takes is the
simulator's: it completes at a later step chosen by the seed, and a power cut may come first.

Real parts: ``GroupCommit`` and ``FsyncPolicy`` (ferrymq.storage.commit) do the fsyncs; the logs are
``FaultyLog`` (queue logs) and ``FaultyStreamLog`` (streams).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ferrymq.storage.commit import FsyncPolicy, GroupCommit

Send = Callable[[bool], None]


class Writable(Protocol):
    """A queue log as the turn's end sees it (ferrymq.storage.queue_log.QueueLog)."""

    log: Any

    def write(self) -> bool: ...


class SimCommit:
    """One per node incarnation. ``synced_turn`` tells the oracle which log's records are durable."""

    def __init__(self) -> None:
        self.group = GroupCommit(FsyncPolicy("always"))
        self.dirty: list[Writable] = []
        self.publish_pending = False  # a PUBLISH record was logged since the last write (QueueLog sets it)
        self.turn = 1
        self.written_turn = 0
        self.held: list[tuple[int, Callable[[], bool], Send]] = []
        self.in_flight: tuple[int, list[Any]] | None = None  # (turn it covers, logs it fsyncs)
        self._noted: dict[int, Any] = {}  # id(log) -> log noted since the last commit started
        self.synced_turn: dict[int, int] = {}  # id(log) -> every record written up to this turn is durable
        self.counters = dict.fromkeys(("writes", "commits", "fsyncs", "held"), 0)

    # --- the queue logs' write sink (ferrymq.storage.queue_log.WriteSink) -------------------------

    def note_dirty(self, qlog: Writable) -> None:
        self.dirty.append(qlog)

    def note_append(self, log: Any) -> None:
        """A stream (or offsets) log was appended to: the next commit fsyncs it."""
        self.group.note_append(log)
        self._noted[id(log)] = log
        self.publish_pending = True

    # --- held replies ------------------------------------------------------------------------------

    def must_hold(self) -> bool:
        return self.publish_pending or self.in_flight is not None or bool(self.held)

    def hold(self, alive: Callable[[], bool], send: Send) -> None:
        """``send(True)`` once the commit covering this turn returns, if ``alive()`` still."""
        self.held.append((self.turn, alive, send))
        self.counters["held"] += 1

    def _release(self, upto: int) -> list[Send]:
        n = 0
        sent: list[Send] = []
        while n < len(self.held) and self.held[n][0] <= upto:
            _, alive, send = self.held[n]
            if alive():
                send(True)
                sent.append(send)
            n += 1
        del self.held[:n]
        return sent

    # --- the end of a turn -------------------------------------------------------------------------

    def end_of_turn(self) -> None:
        """Write every dirty queue log once; stream appends were written when they were made."""
        dirty, self.dirty = self.dirty, []
        for qlog in dirty:
            if qlog.write():
                self.group.note_append(qlog.log)
                self._noted[id(qlog.log)] = qlog.log
            self.counters["writes"] += 1
        self.written_turn = self.turn
        self.publish_pending = False
        self.turn += 1
        self._maybe_commit()

    def _maybe_commit(self) -> None:
        """As the server with ``fsync = always``: a commit starts at the end of the turn that needs
        one (capturing what it covers: the contract's step 1); with nothing to fsync, what was held
        for the written turns goes out."""
        if self.in_flight is not None:
            return
        if self.group.pending:
            self.in_flight = (self.written_turn, list(self._noted.values()))
            self._noted = {}
        else:
            self._release(self.written_turn)

    def complete_commit(self) -> None:
        """The fsync returns: every log it covered is durable up to the captured turn."""
        assert self.in_flight is not None
        covers, logs = self.in_flight
        # The fsyncs run now, so they also cover what was written since the commit started (the
        # contract's step 3): every log GroupCommit holds is durable up to the last written turn.
        logs += self._noted.values()
        self._noted = {}
        self.counters["fsyncs"] += self.group.commit()
        self.counters["commits"] += 1
        for log in logs:
            self.synced_turn[id(log)] = self.written_turn
        self.in_flight = None
        self._release(covers)
        self._maybe_commit()
