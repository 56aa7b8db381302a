"""Fsync policy parsing and group commit: one fsync per dirty log per commit, errors keep the rest dirty."""

from __future__ import annotations

import pytest

from ferrymq.storage.commit import FsyncPolicy, GroupCommit


class Counting:
    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def fsync(self) -> int:
        self.calls += 1
        if self.fail:
            raise OSError(5, "EIO")
        return 1


def test_parse():
    assert FsyncPolicy.parse("always") == FsyncPolicy("always")
    assert FsyncPolicy.parse(" NEVER ") == FsyncPolicy("never")
    assert FsyncPolicy.parse("interval:250") == FsyncPolicy("interval", 250)
    assert str(FsyncPolicy.parse("interval:250")) == "interval:250"
    for bad in ("sometimes", "interval:", "interval:0", "interval:-5", "interval:1.5"):
        with pytest.raises(ValueError):
            FsyncPolicy.parse(bad)


def test_always_fsyncs_each_dirty_log_once():
    a, b = Counting(), Counting()
    gc = GroupCommit(FsyncPolicy.parse("always"))
    assert not gc.due(0) and gc.commit() == 0
    for log in (a, b, a, a, b):
        gc.note_append(log)
    assert gc.due(0)
    assert gc.commit() == 2 and (a.calls, b.calls) == (1, 1)
    assert not gc.pending and gc.commit() == 0 and gc.fsyncs == 2


def test_interval_and_never():
    log = Counting()
    gc = GroupCommit(FsyncPolicy.parse("interval:100"))
    gc.note_append(log)
    assert gc.due(1_000)
    assert gc.commit(now_ms=1_000) == 1
    gc.note_append(log)
    assert not gc.due(1_099) and gc.due(1_100)
    never = GroupCommit(FsyncPolicy.parse("never"))
    never.note_append(log)
    assert not never.due(10**9) and never.commit() == 0 and log.calls == 1 and not never.pending


def test_failed_fsync_raises_and_keeps_the_rest_dirty():
    good1, bad, good2 = Counting(), Counting(fail=True), Counting()
    gc = GroupCommit(FsyncPolicy.parse("always"))
    for log in (good1, bad, good2):
        gc.note_append(log)
    with pytest.raises(OSError):
        gc.commit()
    assert good1.calls == 1 and good2.calls == 0 and gc.pending
    assert gc.commit() == 1 and good2.calls == 1
