"""Segment files (the one segment, both record kinds): header, append/read, the sparse index, and
recovery of torn or corrupt tails."""

from __future__ import annotations

import os
import struct

import pytest

from ferrymq.storage.errors import CorruptRecord, CorruptSegment, OffsetOutOfRange
from ferrymq.storage.records import DecodeFault, encode_record
from ferrymq.storage.segment import FORMAT_VERSION, HEADER_BYTES, MAGIC, Segment, StreamSegment, TornHeader

N = 6


def payload(i: int) -> bytes:
    return f"record-{i}-".encode() * (i + 1)


def write_segment(path, n=N, base=0) -> list[int]:
    seg = Segment.create(path, base)
    positions = seg.append([encode_record(i % 256, payload(i)) for i in range(n)])
    seg.fsync()
    seg.close()
    return positions


def test_header_layout(tmp_path):
    path = tmp_path / "s.seg"
    Segment.create(path, 1234).close()
    data = path.read_bytes()
    assert len(data) == HEADER_BYTES == 20
    magic, version, kind, flags, base = struct.unpack_from(">4sHBBQ", data)
    assert (magic, version, kind, flags, base) == (MAGIC, FORMAT_VERSION, 1, 0, 1234)


def test_append_read_reopen(tmp_path):
    path = tmp_path / "s.seg"
    positions = write_segment(path, base=10)
    assert positions[0] == HEADER_BYTES
    seg = Segment.open(path)
    assert seg.recovery is not None and not seg.recovery.truncated and seg.recovery.records_kept == N
    assert (seg.base, seg.count, seg.next_number, seg.size) == (10, N, 10 + N, path.stat().st_size)
    for i, pos in enumerate(positions):
        rec = seg.read(pos)
        assert (rec.type, rec.payload) == (i, payload(i))
        assert seg.position_of(10 + i) == pos
        assert seg.read_number(10 + i).payload == payload(i)
    with pytest.raises(OffsetOutOfRange):
        seg.position_of(10 + N)
    seg.close()


def test_create_refuses_to_overwrite(tmp_path):
    path = tmp_path / "s.seg"
    Segment.create(path, 0).close()
    with pytest.raises(FileExistsError):
        Segment.create(path, 0)


def test_sparse_index_many_records(tmp_path):
    seg = Segment.create(tmp_path / "s.seg", 0, index_interval_bytes=64)
    for chunk in range(20):
        seg.append([encode_record(1, b"%d" % (chunk * 50 + i) * 3) for i in range(50)])
    assert len(seg._idx_num) > 10
    for n in (999, 0, 500, 501, 17, 998, 3):
        assert seg.read_number(n).payload == b"%d" % n * 3
    seg.close()
    reopened = Segment.open(tmp_path / "s.seg", index_interval_bytes=64)
    assert list(reopened._idx_num) == list(seg._idx_num) and list(reopened._idx_pos) == list(seg._idx_pos)
    reopened.close()


def test_torn_tail_at_every_byte_of_the_last_record(tmp_path):
    path = tmp_path / "s.seg"
    positions = write_segment(path)
    original = path.read_bytes()
    start = positions[-1]
    for cut in range(start, len(original)):
        path.write_bytes(original[:cut])
        seg = Segment.open(path)
        report = seg.recovery
        assert report is not None
        assert report.records_kept == N - 1 and seg.size == start == path.stat().st_size
        assert report.bytes_truncated == cut - start
        assert report.reason is (None if cut == start else DecodeFault.SHORT_READ)
        assert [seg.read_number(i).payload for i in range(N - 1)] == [payload(i) for i in range(N - 1)]
        seg.close()


def test_every_bit_flip_in_the_last_record_is_truncated(tmp_path):
    path = tmp_path / "s.seg"
    positions = write_segment(path)
    original = path.read_bytes()
    start = positions[-1]
    for bit in range((len(original) - start) * 8):
        damaged = bytearray(original)
        damaged[start + bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(damaged)
        seg = Segment.open(path)
        report = seg.recovery
        assert report is not None and report.records_kept == N - 1, bit
        assert report.bytes_truncated == len(original) - start
        assert report.reason is not None
        if bit >= 32:
            assert report.reason is DecodeFault.CRC_MISMATCH
        assert [seg.read_number(i).payload for i in range(N - 1)] == [payload(i) for i in range(N - 1)]
        seg.close()


def test_corruption_after_open_raises_on_read(tmp_path):
    path = tmp_path / "s.seg"
    positions = write_segment(path)
    seg = Segment.open(path)
    fd = os.open(path, os.O_RDWR)
    os.pwrite(fd, b"\xff", positions[2] + 12)
    os.close(fd)
    with pytest.raises(CorruptRecord):
        seg.read(positions[2])
    assert seg.read(positions[3]).payload == payload(3)
    seg.close()


def test_headers_torn_or_corrupt(tmp_path):
    path = tmp_path / "s.seg"
    Segment.create(path, 5).close()
    good = path.read_bytes()
    for data in (b"", good[:7], bytes(HEADER_BYTES)):
        path.write_bytes(data)
        with pytest.raises(TornHeader):
            Segment.open(path)
    for i in (0, 5, 12, 19):
        damaged = bytearray(good)
        damaged[i] ^= 0x10
        path.write_bytes(damaged)
        with pytest.raises(CorruptSegment):
            Segment.open(path)


# --- one index for both record kinds: a sparse index answers exactly as a dense one ---------------


def _stream_segment(path, n_batches: int) -> None:
    from ferrymq.protocols.kafka.batch import assign_offsets, validate
    from ferrymq.protocols.kafka.records import encode_batch

    seg = StreamSegment.create(path, 0)
    offset = 0
    for i in range(n_batches):
        data = bytearray(encode_batch([(None, b"v%d" % i * (i % 7 + 1), [])] * (i % 3 + 1), 1_000 + i))
        infos = validate(data, 1 << 20)
        assign_offsets(data, infos, offset)
        seg.append_frames(data, [(b.start, offset, b.count, b.max_timestamp) for b in infos])
        offset += sum(b.count for b in infos)
    seg.fsync()
    seg.close()


@pytest.mark.parametrize("kind", ["queue", "stream"])
def test_sparse_and_dense_indexes_answer_alike(tmp_path, kind):
    path = tmp_path / "s.seg"
    if kind == "queue":
        seg = Segment.create(path, 40)
        seg.append([encode_record(i % 256, b"r%d" % i * (i % 5 + 1)) for i in range(300)])
        seg.fsync()
        seg.close()
        cls = Segment
    else:
        _stream_segment(path, 120)
        cls = StreamSegment
    dense = cls.open(path, index_interval_bytes=0)
    sparse = cls.open(path, index_interval_bytes=300)
    assert len(dense._idx_num) == dense.count and len(sparse._idx_num) < dense.count // 3
    assert sparse.next_number == dense.next_number and sparse.count == dense.count
    numbers = range(dense.base, dense.next_number)
    assert [sparse.position_of(n) for n in numbers] == [dense.position_of(n) for n in numbers]
    for n in numbers[::7]:
        for max_bytes in (1, 50, 333, 1_000, 10**6):
            assert sparse.span(n, max_bytes) == dense.span(n, max_bytes), (n, max_bytes)
            start, end = dense.span(n, max_bytes)
            boundaries = [*dense._idx_pos, dense.size]
            assert start in boundaries and end in boundaries, "whole frames only"
            one = boundaries[boundaries.index(start) + 1]
            assert end - start <= max_bytes or end == one, "past the limit only for a single frame"
            assert end == max(b for b in boundaries if b <= max(start + max_bytes, one)), "as many as fit"
    assert sparse.heads(5) == dense.heads(5) and len(dense.heads(5)) == 5
    if kind == "stream":
        for ts in (0, 1_000, 1_050, 1_119, 1_120):
            assert sparse.number_for_time(ts) == dense.number_for_time(ts)
        assert dense.number_for_time(1_050) == sum(i % 3 + 1 for i in range(50))
    assert [f for f in sparse.frames()] == [f for f in dense.frames()]
    for n in (dense.base + 4, dense.base + 100):  # inside a batch, for streams
        run = dense.read_run(n, 2_000)
        assert [r.payload for r in sparse.read_run(n, 2_000)] == [r.payload for r in run]
        assert run[0].position == dense.position_of(n) and run[0] == dense.read(run[0].position)
        assert dense.read_number(n) == run[0]
    dense.close()
    sparse.close()
