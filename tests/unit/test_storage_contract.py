"""One contract, every store: Log (files), MemoryLog, FaultyLog (files that lose power).

Plus the model test: random appends, fsyncs, deletes, crashes and reopens against FaultyLog; whatever
was fsynced before a crash is still there with the same offset and payload, and nothing else is ever
returned but what was appended at that offset. A failing run replays from its seed (hypothesis prints it).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.storage.errors import OffsetOutOfRange
from ferrymq.storage.faulty import FaultyLog
from ferrymq.storage.log import Log
from ferrymq.storage.memory import MemoryLog

SEGMENT_BYTES = 300


def _reopen_log(log: Log) -> Log:
    log.close()
    return Log(log.directory, segment_bytes=SEGMENT_BYTES)


def _reopen_faulty(log: FaultyLog) -> FaultyLog:
    log.crash(random.Random(7))  # a power cut: only what was fsynced must survive
    return log


STORES: dict[str, tuple[Callable[[Path], Any], Callable[[Any], Any]]] = {
    "file": (lambda d: Log(d, segment_bytes=SEGMENT_BYTES), _reopen_log),
    "memory": (lambda d: MemoryLog(), lambda log: log),
    "faulty": (lambda d: FaultyLog(d, segment_bytes=SEGMENT_BYTES), _reopen_faulty),
}


@pytest.fixture(params=sorted(STORES))
def store(request, tmp_path):
    make, reopen = STORES[request.param]
    holder = {"log": make(tmp_path), "reopen": reopen}
    yield holder
    holder["log"].close()


def rec(i: int) -> tuple[int, bytes]:
    return (i % 256, b"payload-%d-" % i * (i % 5))


def test_append_read_round_trip(store):
    log = store["log"]
    assert (log.first_offset, log.next_offset) == (0, 0)
    assert log.append([]) == []
    assert log.append([rec(0), rec(1)]) == [0, 1]
    assert log.append([(3, b"")]) == [2]
    assert log.read(1) == rec(1) and log.read(2) == (3, b"")
    for bad in (-1, 3):
        with pytest.raises(OffsetOutOfRange):
            log.read(bad)
    with pytest.raises(ValueError):
        log.append([(256, b"")])


def test_offsets_monotonic_across_rolls(store):
    log = store["log"]
    offsets: list[int] = []
    for start in range(0, 200, 7):
        offsets += log.append([rec(i) for i in range(start, start + 7)])
    assert offsets == list(range(len(offsets)))
    assert [log.read(i) for i in offsets] == [rec(i) for i in offsets]
    if isinstance(log, Log | FaultyLog):
        assert len(list(Path(getattr(log, "directory", "")).iterdir())) > 5


def test_delete_segments_before_keeps_later_records(store, tmp_path):
    log = store["log"]
    for start in range(0, 200, 10):
        log.append([rec(i) for i in range(start, start + 10)])
    files_before = len(list(tmp_path.iterdir()))
    reclaimed = log.delete_segments_before(120)
    assert 0 < reclaimed <= 120 and log.first_offset == reclaimed <= 120
    if not isinstance(log, MemoryLog):
        assert len(list(tmp_path.iterdir())) < files_before
    with pytest.raises(OffsetOutOfRange):
        log.read(log.first_offset - 1)
    assert [log.read(i) for i in range(120, 200)] == [rec(i) for i in range(120, 200)]
    assert log.append([rec(200)]) == [200]


def test_reopen_keeps_everything_fsynced(store):
    log = store["log"]
    for start in range(0, 100, 10):
        log.append([rec(i) for i in range(start, start + 10)])
    log.delete_segments_before(30)
    first = log.first_offset
    log.fsync()
    log.append([rec(100)])  # not fsynced: may or may not survive, but never corrupt
    log = store["log"] = store["reopen"](log)
    assert log.first_offset == first and log.next_offset in (100, 101)
    kept = range(first, log.next_offset)
    assert [log.read(i) for i in kept] == [rec(i) for i in kept]
    assert log.append([rec(500)]) == [log.next_offset - 1]


OPS = st.one_of(
    st.tuples(st.just("append"), st.lists(st.integers(0, 120), min_size=1, max_size=12)),
    st.tuples(st.just("fsync"), st.just(0)),
    st.tuples(st.just("crash"), st.integers(0, 2**32)),
    st.tuples(st.just("reopen"), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 100)),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, max_size=60))
def test_model_fsynced_records_survive_crashes(ops):
    with tempfile.TemporaryDirectory() as tmp:
        log = FaultyLog(tmp, segment_bytes=SEGMENT_BYTES, tear_probability=0.8, flip_probability=0.5)
        appended: list[tuple[int, bytes]] = []  # the reference model: record by offset
        durable = 0  # every offset below this was covered by an fsync
        deleted_below = 0
        try:
            for op, arg in ops:
                if op == "append":
                    batch = [(len(appended) + k) % 256 for k in range(len(arg))]
                    records = [(t, bytes([t]) * size) for t, size in zip(batch, arg)]
                    assert log.append(records) == list(range(len(appended), len(appended) + len(records)))
                    appended += records
                elif op == "fsync":
                    log.fsync()
                    durable = len(appended)
                elif op == "delete":
                    target = len(appended) * arg // 100
                    log.delete_segments_before(target)
                    deleted_below = max(deleted_below, target)
                    assert log.first_offset <= max(deleted_below, log.first_offset)
                else:
                    if op == "crash":
                        log.crash(random.Random(arg))
                    else:
                        log.reopen()
                    assert durable <= log.next_offset <= len(appended), log.damages[-1:]
                    del appended[log.next_offset :]
                    durable = len(appended)  # what survived is on disk now
                assert log.next_offset == len(appended)
                for offset in range(log.first_offset, log.next_offset):
                    assert log.read(offset) == appended[offset]
        finally:
            log.close()


def test_seeded_crash_loop_really_tears_and_flips(tmp_path):
    """The model test is only as good as its faults: check they happen and recovery reports them."""
    rng = random.Random(2024)
    log = FaultyLog(tmp_path, segment_bytes=SEGMENT_BYTES, tear_probability=0.9, flip_probability=0.5)
    appended: list[tuple[int, bytes]] = []
    durable = 0
    truncations = flips = removals = 0
    try:
        for _round in range(150):
            for _ in range(rng.randrange(1, 4)):
                records = [
                    (i % 256, b"%d;" % i * rng.randrange(0, 20))
                    for i in range(len(appended), len(appended) + 5)
                ]
                log.append(records)
                appended += records
                if rng.random() < 0.3:
                    log.fsync()
                    durable = len(appended)
            report = log.crash(rng)
            truncations += report.bytes_truncated > 0
            removals += bool(report.removed)
            flips += log.damages[-1].flipped_at is not None
            assert durable <= log.next_offset <= len(appended)
            del appended[log.next_offset :]
            durable = len(appended)
            assert [log.read(i) for i in range(log.first_offset, log.next_offset)] == appended
    finally:
        log.close()
    assert truncations > 20 and flips > 10 and removals > 0
