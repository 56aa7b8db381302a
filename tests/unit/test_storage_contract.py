"""One contract, every store, both record kinds: queue logs (Log, MemoryLog, FaultyLog) and stream
partition logs (StreamLog, MemoryStreamLog, FaultyStreamLog) — files, memory, files that lose power.

Plus the model tests: random appends, fsyncs, deletes or retention, crashes and reopens against the
faulty store of each kind; whatever was fsynced before a crash is still there with the same offset
and payload, and nothing else is ever returned but what was appended at that offset. A failing run
replays from its seed (hypothesis prints it). And the power cut at every byte: the last write torn
after each of its bytes, always recovered to exactly what was fsynced.
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

from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.storage.errors import OffsetOutOfRange
from ferrymq.storage.faulty import FaultyLog, FaultyStreamLog
from ferrymq.storage.log import Log
from ferrymq.storage.memory import MemoryLog, MemoryStreamLog
from ferrymq.storage.records import encode_record
from ferrymq.storage.stream_log import StreamLog

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


# --- stream partition logs: the same contract over Kafka batches -----------------------------------

STREAM_SEGMENT_BYTES = 600


def _reopen_stream(log: StreamLog) -> StreamLog:
    log.close()
    return StreamLog(log.path, segment_bytes=STREAM_SEGMENT_BYTES)


STREAM_STORES: dict[str, tuple[Callable[[Path], Any], Callable[[Any], Any]]] = {
    "file": (lambda d: StreamLog(d, segment_bytes=STREAM_SEGMENT_BYTES), _reopen_stream),
    "memory": (lambda d: MemoryStreamLog(), lambda log: log),
    "faulty": (lambda d: FaultyStreamLog(d, segment_bytes=STREAM_SEGMENT_BYTES), _reopen_faulty),
}


@pytest.fixture(params=sorted(STREAM_STORES))
def stream(request, tmp_path):
    make, reopen = STREAM_STORES[request.param]
    holder = {"log": make(tmp_path / "p0"), "reopen": reopen, "kind": request.param}
    yield holder
    holder["log"].close()


def value(i: int) -> bytes:
    return b"value-%d-" % i * (i % 4 + 1)


def put(log: Any, first: int, n: int, ts: int = 1_000) -> int:
    """Append one batch of ``n`` records (values ``first..first+n``), as the produce path does."""
    data = bytearray(encode_batch([(None, value(i), []) for i in range(first, first + n)], ts))
    infos = validate(data, 1 << 20)
    assign_offsets(data, infos, log.next_offset)
    return int(log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos]))


def everything(log: Any) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every readable record, fetched as a consumer does."""
    out: list[tuple[int, bytes | None]] = []
    offset = log.start_offset
    while offset < log.next_offset:
        data = log.read(offset, 500)
        assert data, f"no batch at {offset} below the end {log.next_offset}"
        recs = [(o, v) for o, _ts, _k, v, _h in decode_batches(data) if o >= offset]
        out += recs
        offset = recs[-1][0] + 1
    return out


def test_stream_append_read_round_trip(stream):
    log = stream["log"]
    assert (log.start_offset, log.next_offset) == (0, 0) and log.read(0, 100) == b""
    assert put(log, 0, 3) == 3 and put(log, 3, 1) == 4
    for offset in range(4):
        first = decode_batches(log.read(offset, 1))  # at least the whole batch holding it
        assert first[0][0] <= offset <= first[-1][0]
    assert everything(log) == [(i, value(i)) for i in range(4)]
    assert log.read(4, 100) == b""


def test_stream_offsets_monotonic_across_rolls(stream):
    log = stream["log"]
    ends = [put(log, i * 3, 3, ts=1_000 + i) for i in range(40)]
    assert ends == list(range(3, 121, 3))
    assert everything(log) == [(i, value(i)) for i in range(120)]
    assert log.offset_for_time(1_010) == 30 and log.offset_for_time(10**9) is None
    assert [int.from_bytes(h[:8], "big") for h in log.tail_headers(3)] == [111, 114, 117]  # base offsets
    if stream["kind"] != "memory":
        assert len(list(log.path.iterdir())) > 5


def test_stream_retention_keeps_later_batches(stream):
    log = stream["log"]
    for i in range(40):
        put(log, i * 3, 3, ts=1_000 + i)
    removed = log.apply_retention(now_ms=0, retention_ms=-1, retention_bytes=1_500)
    assert removed > 0 and 0 < log.start_offset < 120
    kept = everything(log)
    assert kept == [(i, value(i)) for i in range(log.start_offset, 120)]
    before = log.start_offset
    assert log.apply_retention(now_ms=10**12, retention_ms=1, retention_bytes=-1) > 0  # all are old
    assert before < log.start_offset <= 117, "everything but the newest segment (or batch) went"
    assert log.next_offset == 120 and everything(log) == [(i, value(i)) for i in range(log.start_offset, 120)]
    assert put(log, 120, 2) == 122


def test_stream_reopen_keeps_everything_fsynced(stream):
    log = stream["log"]
    for i in range(20):
        put(log, i * 2, 2)
    log.apply_retention(now_ms=0, retention_ms=-1, retention_bytes=1_200)
    start = log.start_offset
    log.fsync()
    put(log, 40, 2)  # not fsynced: may or may not survive, but never corrupt
    log = stream["log"] = stream["reopen"](log)
    assert log.start_offset == start and log.next_offset in (40, 42)
    assert everything(log) == [(i, value(i)) for i in range(start, log.next_offset)]
    assert put(log, log.next_offset, 1) == log.next_offset


# --- power loss: the last write torn after every one of its bytes, for both kinds -------------------


def _queue_state(directory: Path) -> tuple[FaultyLog, int, list[tuple[int, int]]]:
    """A faulty queue log with 30 records fsynced and one write of two more not: (log, durable,
    the unsynced write's frames as (bytes, offsets taken))."""
    log = FaultyLog(directory, segment_bytes=1 << 20)
    for start in range(0, 30, 5):
        log.append([rec(i) for i in range(start, start + 5)])
    log.fsync()
    log.append([rec(30), rec(31)])  # the write the power cut tears
    return log, 30, [(len(encode_record(*rec(i))), 1) for i in (30, 31)]


def _stream_state(directory: Path) -> tuple[FaultyStreamLog, int, list[tuple[int, int]]]:
    log = FaultyStreamLog(directory, segment_bytes=1 << 20)
    for i in range(6):
        put(log, i * 5, 5)
    log.fsync()
    before = log.segments[-1].size
    put(log, 30, 2)  # one batch of two records: it survives whole or not at all
    return log, 30, [(log.segments[-1].size - before, 2)]


@pytest.mark.parametrize("kind", ["queue", "stream"])
def test_power_loss_tears_the_last_write_at_every_byte(tmp_path, kind):
    make = _queue_state if kind == "queue" else _stream_state
    probe, _, frames = make(tmp_path / "probe")
    probe.close()
    unsynced = sum(size for size, _ in frames)
    assert unsynced > 20
    for kept in range(unsynced + 1):
        log, durable, _ = make(tmp_path / f"cut{kept}")
        report = log.crash(torn_bytes=kept)
        whole_bytes, expect = 0, durable  # the frames that fit whole in what survived
        for size, offsets in frames:
            if whole_bytes + size > kept:
                break
            whole_bytes += size
            expect += offsets
        assert log.next_offset == expect, kept
        assert report.bytes_truncated == kept - whole_bytes, (kept, report.summary())
        if kind == "queue":
            assert [log.read(i) for i in range(log.next_offset)] == [rec(i) for i in range(log.next_offset)]
        else:
            assert everything(log) == [(i, value(i)) for i in range(log.next_offset)]
        log.close()


STREAM_OPS = st.one_of(
    st.tuples(st.just("append"), st.integers(1, 6)),
    st.tuples(st.just("fsync"), st.just(0)),
    st.tuples(st.just("crash"), st.integers(0, 2**32)),
    st.tuples(st.just("reopen"), st.just(0)),
    st.tuples(st.just("retention"), st.integers(200, 3_000)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STREAM_OPS, max_size=50))
def test_stream_model_fsynced_batches_survive_crashes(ops):
    with tempfile.TemporaryDirectory() as tmp:
        log = FaultyStreamLog(tmp, segment_bytes=STREAM_SEGMENT_BYTES, tear_probability=0.8,
                              flip_probability=0.5)
        appended = 0  # the reference model: record i has value(i) at offset i
        durable = 0
        try:
            for op, arg in ops:
                if op == "append":
                    assert put(log, appended, arg) == appended + arg
                    appended += arg
                elif op == "fsync":
                    log.fsync()
                    durable = appended
                elif op == "retention":
                    before = log.start_offset
                    log.apply_retention(now_ms=0, retention_ms=-1, retention_bytes=arg)
                    assert before <= log.start_offset <= log.next_offset
                else:
                    log.crash(random.Random(arg)) if op == "crash" else log.reopen()
                    assert durable <= log.next_offset <= appended, log.damages[-1:]
                    appended = durable = log.next_offset
                assert log.next_offset == appended
                assert everything(log) == [(i, value(i)) for i in range(log.start_offset, appended)]
        finally:
            log.close()


def test_seeded_stream_crash_loop_really_tears_and_flips(tmp_path):
    rng = random.Random(2025)
    log = FaultyStreamLog(tmp_path, segment_bytes=STREAM_SEGMENT_BYTES, tear_probability=0.9,
                          flip_probability=0.5)
    appended = durable = 0
    truncations = flips = 0
    try:
        for _round in range(120):
            for _ in range(rng.randrange(1, 4)):
                appended = put(log, appended, rng.randrange(1, 5))
                if rng.random() < 0.3:
                    log.fsync()
                    durable = appended
            report = log.crash(rng)
            truncations += report.bytes_truncated > 0
            flips += log.damages[-1].flipped_at is not None
            assert durable <= log.next_offset <= appended
            appended = durable = log.next_offset
            assert everything(log) == [(i, value(i)) for i in range(log.start_offset, appended)]
    finally:
        log.close()
    assert truncations > 20 and flips > 10
