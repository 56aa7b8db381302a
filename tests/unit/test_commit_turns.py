"""The commit pipeline's bookkeeping without a loop or a thread (ferrymq.storage.turns): the same
decisions the server's pipeline and the simulator run, stepped by hand."""

from __future__ import annotations

from ferrymq.storage.commit import FsyncPolicy
from ferrymq.storage.turns import CommitTurns


class FakeLog:
    def __init__(self) -> None:
        self.fsyncs = 0

    def fsync(self) -> int:
        self.fsyncs += 1
        return 1


class Writer:
    def __init__(self, fail: bool = False) -> None:
        self.log, self.fail, self.writes = FakeLog(), fail, 0

    def write(self) -> bool:
        if self.fail:
            raise OSError(28, "ENOSPC")
        self.writes += 1
        return True


def test_a_reply_waits_for_the_commit_covering_its_turn_and_later_turns_wait_for_later_commits():
    t = CommitTurns(FsyncPolicy("always"))
    sent: list[tuple[str, bool]] = []
    t.note_append(FakeLog())
    assert t.hold(lambda ok: sent.append(("first", ok)))
    t.close_turn()
    assert t.next_action(0) == "commit"
    covers = t.start_commit()
    fsyncs = t.group.commit()  # in the fsync thread; its return reaches the loop later
    t.note_append(FakeLog())  # the next turn's append, after the fsync: not covered by it
    assert t.hold(lambda ok: sent.append(("second", ok)))
    t.close_turn()
    assert t.next_action(0) == "idle" and sent == []  # one commit at a time
    t.committed(covers, fsyncs)
    assert sent == [("first", True)]
    assert t.next_action(0) == "commit"
    t.committed(t.start_commit(), None)  # this fsync failed: what it covered is not stored
    assert sent == [("first", True), ("second", False)]
    assert t.counters["commits"] == 1 and t.counters["fsync_errors"] == 1 and t.counters["replies_held"] == 2


def test_nothing_to_commit_releases_at_once_and_nothing_pending_sends_at_once():
    t = CommitTurns(FsyncPolicy("always"))
    sent: list[bool] = []
    assert not t.hold(sent.append) and sent == [True]
    t.note_stream_publish()  # buffered, not yet written: held until the turn is written
    assert t.hold(sent.append) and sent == [True]
    t.close_turn()
    assert t.next_action(0) == "idle" and sent == [True, True]


def test_interval_waits_until_due_and_never_notes_no_stream_log():
    t = CommitTurns(FsyncPolicy.parse("interval:100"))
    t.note_append(FakeLog())
    t.close_turn()
    assert t.next_action(0) == "commit"  # the first commit is due at once
    t.committed(t.start_commit(), t.group.commit(0))
    t.note_append(FakeLog())
    t.close_turn()
    assert t.next_action(50) == "wait" and t.next_action(100) == "commit"
    never = CommitTurns(FsyncPolicy("never"))
    never.note_append(FakeLog())
    assert not never.group.pending and not never.must_hold()


def test_a_failed_write_keeps_the_store_dirty_and_the_turn_unwritten():
    t = CommitTurns(FsyncPolicy("always"))
    bad = Writer(fail=True)
    sent: list[bool] = []
    t.note_dirty(bad)
    t.publish_pending = True
    t.hold(sent.append)
    errors = t.close_turn()
    assert len(errors) == 1 and t.dirty == [bad] and t.written_turn == 0
    assert t.next_action(0) == "idle" and sent == []  # nothing written, nothing released
    bad.fail = False
    assert t.close_turn() == [] and t.next_action(0) == "commit"
    t.committed(t.start_commit(), t.group.commit())
    assert sent == [True] and bad.log.fsyncs == 1 and t.counters["write_errors"] == 1
