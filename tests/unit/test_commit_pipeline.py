"""The one commit pipeline on a real event loop with fake logs: replies wait for the fsync that
covers their turn and leave in order, a failed fsync fails what it covered, each policy's rule, and
the turn's order (drain every front end, write and commit, write out)."""

from __future__ import annotations

import asyncio
import threading

from ferrymq.clock import ManualClock
from ferrymq.server.commit import CommitPipeline
from ferrymq.storage.commit import FsyncPolicy


class FakeLog:
    def __init__(self, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.gate, self.fail, self.fsyncs = gate, fail, 0

    def fsync(self) -> int:
        if self.gate is not None:
            self.gate.wait(5)
        if self.fail:
            raise OSError(5, "EIO")
        self.fsyncs += 1
        return 1


class FrontEnd:
    def __init__(self, name: str, events: list[str]) -> None:
        self.name, self.events = name, events

    def drain(self) -> None:
        self.events.append(f"{self.name} drain")

    def write_out(self) -> None:
        self.events.append(f"{self.name} write")


async def _settle(loop_turns: int = 20) -> None:
    for _ in range(loop_turns):
        await asyncio.sleep(0.01)


def _pipeline(policy: str) -> CommitPipeline:
    return CommitPipeline(FsyncPolicy.parse(policy), asyncio.get_running_loop(), ManualClock())


def test_replies_wait_for_the_fsync_and_leave_in_order():
    async def main() -> None:
        p = _pipeline("always")
        gate = threading.Event()
        lg = FakeLog(gate)
        sent: list[tuple[str, bool]] = []
        p.note_append(lg)
        p.hold(lambda ok: sent.append(("first", ok)))
        await _settle()  # the turn ended; its commit waits at the gate
        p.hold(lambda ok: sent.append(("second", ok)))  # nothing new, but an older reply waits
        await _settle()
        assert sent == [] and p.in_flight
        gate.set()
        await _settle()
        assert sent == [("first", True), ("second", True)] and lg.fsyncs == 1
        assert p.counters["commits"] == 1 and p.counters["replies_held"] == 2
        p.close()

    asyncio.run(main())


def test_a_failed_fsync_fails_the_replies_it_covered():
    async def main() -> None:
        p = _pipeline("always")
        sent: list[bool] = []
        p.note_append(FakeLog(fail=True))
        p.hold(sent.append)
        await _settle()
        assert sent == [False] and p.counters["fsync_errors"] == 1
        p.close()

    asyncio.run(main())


def test_never_answers_at_once_and_notes_no_stream_log():
    async def main() -> None:
        p = _pipeline("never")
        sent: list[bool] = []
        p.note_append(FakeLog())
        p.hold(sent.append)
        assert sent == [True] and not p.group.pending
        p.close()

    asyncio.run(main())


def test_interval_replies_wait_for_the_timed_commit():
    async def main() -> None:
        p = _pipeline("interval:300")
        lg = FakeLog()
        first: list[bool] = []
        p.note_append(lg)
        p.hold(first.append)
        await _settle(3)
        assert first == [True] and lg.fsyncs == 1  # the first commit is due at once
        second: list[bool] = []
        p.note_append(lg)
        p.hold(second.append)
        await _settle(10)  # ~0.1 s: the interval has not passed
        assert second == [] and lg.fsyncs == 1
        await asyncio.sleep(0.4)
        assert second == [True] and lg.fsyncs == 2
        p.close()

    asyncio.run(main())


def test_one_turn_drains_every_front_end_before_writing_and_writes_out_after():
    async def main() -> None:
        p = _pipeline("always")
        events: list[str] = []
        p.attach(FrontEnd("amqp", events))
        p.attach(FrontEnd("kafka", events))

        class Writer:
            log = FakeLog()

            def write(self) -> bool:
                events.append("store write")
                return True

        p.note_dirty(Writer())
        p.request_turn_end()  # asked twice in one loop turn: the turn ends once
        await _settle(2)
        assert events == ["amqp drain", "kafka drain", "store write", "amqp write", "kafka write"]
        p.close()

    asyncio.run(main())


class SettleLater:
    """A writer that, like a dead-letter source's queue log, has records waiting for a commit."""

    def __init__(self, p: CommitPipeline) -> None:
        self.p, self.log, self.writes = p, FakeLog(), 0

    def waited(self, stored: bool) -> None:
        assert stored
        self.p.note_dirty(self)

    def write(self) -> bool:
        self.writes += 1
        return False


def test_close_runs_what_waited_for_a_commit_and_writes_what_that_dirtied():
    async def main() -> None:
        p = _pipeline("always")
        writer = SettleLater(p)
        p.note_append(FakeLog())  # a publish this turn: what comes after waits for its commit
        p.after_commit(writer.waited)
        assert writer.writes == 0
        p.close()  # a clean stop before the loop ran the commit
        assert writer.writes == 1 and not p.after

    asyncio.run(main())
