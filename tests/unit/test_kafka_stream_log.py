"""Stream partition logs: append and read whole batches by offset, roll, time index, retention,
recovery of a torn or corrupt tail, and the segment header kind."""

from __future__ import annotations

import pytest

from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.storage.errors import StorageError
from ferrymq.storage.segment import Segment
from ferrymq.storage.stream_log import StreamLog


def _append(log: StreamLog, n_records: int, ts: int) -> int:
    data = bytearray(encode_batch([(b"k", b"v" * 40, [])] * n_records, ts))
    infos = validate(data, 1 << 20)
    assign_offsets(data, infos, log.next_offset)
    return log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos])


def test_append_read_roll_and_time_index(tmp_path):
    log = StreamLog(tmp_path / "p0", segment_bytes=400)
    for i in range(12):
        _append(log, 2, 1_000 + i)
    assert log.next_offset == 24 and len(log.segments) > 2
    for offset in (0, 5, 13, 23):
        first = decode_batches(log.read(offset, 1))
        assert first[0][0] <= offset <= first[-1][0]  # the batch holding the offset, whole
    everything = []
    offset = 0
    while offset < log.next_offset:
        recs = decode_batches(log.read(offset, 10_000))
        everything += [o for o, *_ in recs if o >= offset]
        offset = everything[-1] + 1
    assert everything == list(range(24))
    assert log.offset_for_time(1_005) == 10
    assert log.offset_for_time(99_999) is None
    assert log.read(24, 100) == b""
    log.close()


def test_reopen_recovers_torn_and_corrupt_tails(tmp_path):
    log = StreamLog(tmp_path / "p0")
    for i in range(3):
        _append(log, 3, i)
    path = log.segments[-1].path
    size = path.stat().st_size
    log.close()
    with open(path, "ab") as f:
        f.write(encode_batch([(None, b"torn", [])], 9)[:30])
    log = StreamLog(tmp_path / "p0")
    assert log.next_offset == 9 and log.recovery.bytes_truncated == 30
    log.close()
    with open(path, "r+b") as f:  # flip a byte inside the last batch: it goes, the rest stay
        f.seek(size - 3)
        f.write(b"\xff")
    log = StreamLog(tmp_path / "p0")
    assert log.next_offset == 6 and log.recovery.bytes_truncated > 0
    assert _append(log, 1, 5) == 7
    log.close()


def test_retention_by_time_and_size_keeps_the_active_segment(tmp_path):
    log = StreamLog(tmp_path / "p0", segment_bytes=300)
    for i in range(10):
        _append(log, 2, 1_000 + i)
    n = len(log.segments)
    assert log.apply_retention(now_ms=1_000_000, retention_ms=-1, retention_bytes=-1) == 0
    removed = log.apply_retention(now_ms=1_000 + 5 + 10, retention_ms=10, retention_bytes=-1)
    assert 0 < removed < n and log.start_offset > 0
    assert decode_batches(log.read(log.start_offset, 100))[0][0] == log.start_offset
    log.apply_retention(now_ms=0, retention_ms=-1, retention_bytes=1)
    assert len(log.segments) == 1 and log.next_offset == 20
    log.close()
    reopened = StreamLog(tmp_path / "p0", segment_bytes=300)
    assert reopened.next_offset == 20
    reopened.close()


def test_queue_segments_refuse_stream_files(tmp_path):
    log = StreamLog(tmp_path / "p0")
    _append(log, 1, 1)
    log.close()
    with pytest.raises(StorageError):
        Segment.open(log.segments[0].path)
