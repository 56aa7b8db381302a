"""Log over a directory: naming, rolling, reclaiming, and recovery of the directory after damage."""

from __future__ import annotations

import threading
import time

import pytest

from ferrymq.storage.errors import CorruptSegment, OffsetOutOfRange
from ferrymq.storage.log import Log, segment_name
from ferrymq.storage.records import DecodeFault


def rec(i: int) -> tuple[int, bytes]:
    return (i % 7, b"m%05d" % i * 4)


def fill(directory, n: int, segment_bytes: int = 400, batch: int = 5) -> Log:
    log = Log(directory, segment_bytes=segment_bytes)
    for start in range(0, n, batch):
        log.append([rec(i) for i in range(start, min(n, start + batch))])
    log.fsync()
    return log


def test_rolls_and_names(tmp_path):
    log = fill(tmp_path, 100)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) > 3 and names[0] == "00000000000000000000.seg"
    assert names == [segment_name(s.base) for s in log.segments]
    assert all(s.size >= 400 for s in log.segments[:-1])
    assert [log.read(i) for i in range(100)] == [rec(i) for i in range(100)]
    with pytest.raises(OffsetOutOfRange):
        log.read(100)
    log.close()


def test_delete_segments_before_reclaims_whole_files(tmp_path):
    log = fill(tmp_path, 100)
    bases = [s.base for s in log.segments]
    cut = bases[2] + 1
    assert log.delete_segments_before(cut) == bases[2]
    assert log.first_offset == bases[2] and len(list(tmp_path.iterdir())) == len(bases) - 2
    with pytest.raises(OffsetOutOfRange):
        log.read(bases[2] - 1)
    assert [log.read(i) for i in range(bases[2], 100)] == [rec(i) for i in range(bases[2], 100)]
    assert log.delete_segments_before(10**9) > 0 and len(log.segments) == 1  # the active one stays
    log.fsync()
    log.close()
    again = Log(tmp_path, segment_bytes=400)
    assert again.recovery.clean and again.first_offset == log.segments[0].base and again.next_offset == 100
    assert again.append([rec(100)]) == [100]
    again.close()


def test_torn_last_record_at_every_byte(tmp_path):
    log = fill(tmp_path, 40)
    last = log.segments[-1]
    start = last.position_of(39)
    path = last.path
    log.close()
    original = path.read_bytes()
    for cut in range(start, len(original)):
        path.write_bytes(original[:cut])
        log = Log(tmp_path, segment_bytes=400)
        assert log.next_offset == 39
        assert log.recovery.bytes_truncated == cut - start
        assert log.recovery.segments[-1].reason is (None if cut == start else DecodeFault.SHORT_READ)
        assert [log.read(i) for i in range(39)] == [rec(i) for i in range(39)]
        log.close()


def test_segments_after_a_truncated_one_are_removed(tmp_path):
    """Fsync syncs oldest first, so a torn middle segment means nothing after it was confirmed."""
    log = fill(tmp_path, 60)
    middle = log.segments[1]
    log.close()
    data = middle.path.read_bytes()
    middle.path.write_bytes(data[:-3])
    reopened = Log(tmp_path, segment_bytes=400)
    assert reopened.next_offset == middle.next_number - 1
    assert len(reopened.segments) == 2 and len(reopened.recovery.removed) == len(log.segments) - 2
    assert not reopened.recovery.clean and "removed" in reopened.recovery.summary()
    assert [reopened.read(i) for i in range(reopened.next_offset)] == [rec(i) for i in range(59)][
        : reopened.next_offset
    ]
    assert reopened.append([rec(0)]) == [middle.next_number - 1]
    reopened.close()


def test_torn_header_of_the_only_segment_keeps_its_base(tmp_path):
    log = fill(tmp_path, 60)
    log.delete_segments_before(10**9)
    base = log.first_offset
    path = log.segments[0].path
    log.close()
    path.write_bytes(b"")
    again = Log(tmp_path)
    assert again.recovery.removed and again.first_offset == again.next_offset == base
    again.close()


def test_header_base_must_match_name(tmp_path):
    log = fill(tmp_path, 10)
    path = log.segments[0].path
    log.close()
    path.rename(tmp_path / segment_name(5))
    with pytest.raises(CorruptSegment):
        Log(tmp_path)


def test_fsync_concurrent_with_appends(tmp_path):
    log = Log(tmp_path, segment_bytes=4096)
    stop = threading.Event()
    calls: list[int] = []

    def syncer() -> None:
        while not stop.is_set():
            calls.append(log.fsync())

    thread = threading.Thread(target=syncer)
    thread.start()
    try:
        for start in range(0, 2000, 20):
            log.append([rec(i) for i in range(start, start + 20)])
    finally:
        stop.set()
        thread.join()
    log.fsync()
    assert not log.dirty and sum(calls) > 0
    assert [log.read(i) for i in range(0, 2000, 97)] == [rec(i) for i in range(0, 2000, 97)]
    log.close()


def test_append_validates_before_writing(tmp_path):
    log = Log(tmp_path)
    with pytest.raises(ValueError):
        log.append([(1, b"ok"), (300, b"bad type")])
    assert log.next_offset == 0 and log.segments[0].size == len(log.segments[0].path.read_bytes())
    log.close()


def test_segment_rolls_by_age_as_well_as_by_size(tmp_path):
    log = Log(tmp_path / "aged", segment_bytes=1 << 30, segment_ms=50)
    log.append([(1, b"a")])
    log.append([(1, b"b")])
    assert len(log.segments) == 1
    time.sleep(0.06)
    log.append([(1, b"c")])
    assert len(log.segments) == 2 and log.segments[-1].base == 2
    assert log.read(0) == (1, b"a") and log.read(2) == (1, b"c")
    log.close()
