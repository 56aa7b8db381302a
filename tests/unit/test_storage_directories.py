"""Directory durability: every new file and directory is durable in its parent before anything in
it is confirmed. A kill -9 cannot show this (the page cache keeps directory entries), so these tests
record every fsync the storage layer makes (an fsync-recording shim over os.fsync / os.fdatasync,
naming each descriptor's path) and check which directories were synced, and when."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.storage.commit import FsyncPolicy, GroupCommit
from ferrymq.storage.data_dir import DataDir
from ferrymq.storage.log import Log
from ferrymq.storage.metadata import Metadata
from ferrymq.storage.stream_store import StreamStore


class FsyncRecorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on: Path | None = None) -> None:
        self.synced: list[Path] = []
        self.fail_on = fail_on
        real_fsync, real_fdatasync = os.fsync, os.fdatasync

        def record(real):
            def sync(fd: int) -> None:
                path = Path(os.readlink(f"/proc/self/fd/{fd}"))
                if path == self.fail_on:
                    self.fail_on = None
                    raise OSError(5, "injected EIO")
                real(fd)
                self.synced.append(path)
            return sync

        monkeypatch.setattr(os, "fsync", record(real_fsync))
        monkeypatch.setattr(os, "fdatasync", record(real_fdatasync))

    def dirs(self) -> list[Path]:
        return [p for p in self.synced if p.is_dir()]


@pytest.fixture
def fsyncs(monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name descriptors")
    return FsyncRecorder(monkeypatch)


def test_a_new_log_directory_is_synced_in_its_parents_by_the_first_fsync(tmp_path, fsyncs):
    log = Log(tmp_path / "a" / "b" / "q")  # three directories created
    log.append([(1, b"confirmed once the fsync returns")])
    assert not fsyncs.dirs(), "nothing is synced before the commit path asks"
    log.fsync()
    dirs = fsyncs.dirs()
    for parent in (tmp_path, tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "q"):
        assert parent in dirs, f"{parent} not synced: a power cut could lose the new directory"
    assert log.segments[0].path in fsyncs.synced
    fsyncs.synced.clear()
    log.append([(1, b"later")])
    log.fsync()
    assert fsyncs.dirs() == [], "the parents are synced once, not on every commit"
    log.close()


def test_group_commit_covers_the_queue_directory_before_the_confirm(tmp_path, fsyncs):
    meta = Metadata(tmp_path, lambda path, args: Log(path),  # type: ignore[arg-type,return-value]
                    lambda t: json.dumps(t).encode(), lambda b: json.loads(b))
    assert tmp_path in fsyncs.dirs(), "queues/ itself is durable in the data directory at once"
    fsyncs.synced.clear()
    log = meta.queue_declared("/", "jobs", False, {})
    assert isinstance(log, Log)
    fsyncs.synced.clear()  # the SQLite commit of the declaration is not what this test is about
    group = GroupCommit(FsyncPolicy("always"))
    log.append([(1, b"m")])
    group.note_append(log)
    group.commit()  # the confirm of "m" is sent after this returns
    assert tmp_path / "queues" in fsyncs.dirs(), "mkdir queues/<id> must reach disk before a confirm"
    assert log.directory in fsyncs.dirs()
    log.close()
    meta.close()


def _produce(log) -> None:
    data = bytearray(encode_batch([(None, b"v", [])], 1_000))
    infos = validate(data, 1 << 20)
    assign_offsets(data, infos, log.next_offset)
    log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos])


def test_partition_directories_are_synced_in_the_topic_directory_before_an_ack(tmp_path, fsyncs):
    store = StreamStore(tmp_path / "streams")
    assert tmp_path in fsyncs.dirs()
    store.save("orders", 2, {})
    fsyncs.synced.clear()  # the topic directory's own fsync came before its partitions existed
    logs = [store.open_partition("orders", p, 1 << 20) for p in range(2)]
    for lg in logs:
        _produce(lg)
        lg.fsync()  # what the commit thread does before the produce response leaves
    assert tmp_path / "streams" / "orders" in fsyncs.dirs()
    for lg in logs:
        assert lg.path in fsyncs.dirs() and lg.segments[0].path in fsyncs.synced
        lg.close()


def test_a_failed_parent_sync_is_retried_and_nothing_is_confirmed(tmp_path, monkeypatch):
    recorder = FsyncRecorder(monkeypatch, fail_on=tmp_path)
    log = Log(tmp_path / "q")
    log.append([(1, b"m")])
    with pytest.raises(OSError):
        log.fsync()
    assert log.dirty
    log.fsync()
    assert tmp_path in recorder.dirs()
    log.close()


def test_a_new_data_directory_is_durable_in_its_parent(tmp_path, fsyncs):
    data = DataDir(tmp_path / "ferrymq-data")
    assert tmp_path in fsyncs.dirs()
    data.close()


def test_a_log_found_on_disk_syncs_its_parent_once_at_its_first_commit(tmp_path, fsyncs):
    (tmp_path / "q").mkdir()  # made by a broker killed before its first commit
    log = Log(tmp_path / "q")
    log.append([(1, b"m")])
    log.fsync()
    assert tmp_path in fsyncs.dirs()
    fsyncs.synced.clear()
    log.append([(1, b"n")])
    log.fsync()
    assert tmp_path not in fsyncs.dirs()
    log.close()
