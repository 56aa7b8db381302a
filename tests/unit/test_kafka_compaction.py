"""Key compaction of stream partitions: the latest record per key survives at its original offset,
superseded records and expired tombstones go, batches are rebuilt only when they lose records, and a
compacted log reopens (recovery accepts its gaps)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.protocols.kafka import compaction
from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.compression import GZIP, LZ4, NONE, SNAPPY, ZSTD
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.server.cleaner import RECORD_CODEC
from ferrymq.storage.stream_compact import (
    OFFSET_MAP_ENTRY_BYTES,
    apply,
    compact,
    map_keys_for,
    needs_compaction,
    offset_map,
    plan,
)
from ferrymq.storage.stream_log import StreamLog

KEEP_MS = 1_000


def _append(log: StreamLog, records: list[tuple[bytes, bytes | None]], ts: int, codec: int = NONE) -> None:
    data = bytearray(encode_batch([(k, v, []) for k, v in records], ts))
    if codec:  # the same records, compressed as a client sends them
        data[21:23] = codec.to_bytes(2, "big")
        data = bytearray(compaction.rebuild(bytes(data), bytes(data[61:]), len(records)))
    infos = validate(data, 1 << 20)
    assign_offsets(data, infos, log.next_offset)
    log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos])


def _all(log: StreamLog) -> list[tuple[int, int, bytes | None, bytes | None]]:
    out, offset = [], log.start_offset
    while offset < log.next_offset:
        data = log.read(offset, 1 << 20)
        if not data:
            break
        recs = [(o, ts, k, v) for o, ts, k, v, _ in decode_batches(data) if o >= offset]
        out += recs
        offset = recs[-1][0] + 1 if recs else offset + 1
    return out


batches = st.lists(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"d", b"e"]),
                                      st.one_of(st.none(), st.binary(min_size=1, max_size=20))),
                            min_size=1, max_size=6), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(batches=batches, codec=st.sampled_from([NONE, GZIP, SNAPPY, LZ4, ZSTD]), late=st.booleans())
def test_latest_value_of_every_key_survives_at_its_offset(tmp_path_factory, batches, codec, late):
    log = StreamLog(tmp_path_factory.mktemp("p"), segment_bytes=300)
    for i, recs in enumerate(batches):
        _append(log, recs, 1_000 + i, codec)
    before = _all(log)
    inactive_end = log.segments[-1].base
    now = 1_000 + len(batches) + (KEEP_MS * 10 if late else 0)
    compact(log, RECORD_CODEC, now, KEEP_MS)
    after = {o: (k, v) for o, _, k, v in _all(log)}
    latest = {k: o for o, _, k, _ in before if o < inactive_end}
    for o, _ts, k, v in before:
        if o >= inactive_end:  # the active segment is never cleaned
            assert after[o] == (k, v)
        elif latest[k] == o and (v is not None or not late):
            assert after[o] == (k, v), "the latest record of a key is kept at its offset"
        else:
            assert o not in after, "superseded records and expired tombstones go"
    assert log.next_offset == before[-1][0] + 1
    assert not needs_compaction(log, now)
    path = log.path
    log.close()
    again = StreamLog(path, segment_bytes=300)  # recovery accepts the gaps compaction left
    assert {o: (k, v) for o, _, k, v in _all(again)} == after
    assert again.next_offset == before[-1][0] + 1
    again.close()


def test_untouched_batches_keep_their_bytes_and_reads_skip_gaps(tmp_path):
    log = StreamLog(tmp_path / "p", segment_bytes=14)  # a segment per batch
    _append(log, [(b"k", b"old"), (b"x", b"1")], 1)
    _append(log, [(b"y", b"2")], 2)
    _append(log, [(b"k", b"new")], 3)
    _append(log, [(b"z", b"3")] * 3, 4)
    untouched = log.read(2, 1 << 20)
    assert compact(log, RECORD_CODEC, 10, KEEP_MS) == 1
    assert log.read(2, 1 << 20) == untouched  # a batch that keeps all its records keeps its bytes
    assert [o for o, *_ in decode_batches(log.read(0, 1 << 20))] == [1]  # rebuilt: offset 1 alone
    assert decode_batches(log.read(0, 1 << 20))[0][3] == b"1"
    assert log.start_offset == 0  # compaction never moves the log start


def test_time_roll_by_record_timestamps(tmp_path):
    log = StreamLog(tmp_path / "p", segment_ms=100)
    _append(log, [(b"k", b"v")], 1_000)
    _append(log, [(b"k", b"v")], 1_050)
    assert len(log.segments) == 1
    _append(log, [(b"k", b"v")], 1_101)
    assert len(log.segments) == 2 and log.segments[-1].base == 2


def _log_of(batches: list[list[tuple[bytes, bytes | None]]], path) -> StreamLog:
    log = StreamLog(path, segment_bytes=300)
    for i, recs in enumerate(batches):
        _append(log, recs, 1_000 + i)
    return log


keyed_batches = st.lists(st.lists(st.tuples(st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"g"]),
                                            st.one_of(st.none(), st.binary(min_size=1, max_size=20))),
                                  min_size=1, max_size=6), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(batches=keyed_batches, keys_max=st.integers(1, 4), late=st.booleans())
def test_a_bounded_offset_map_compacts_in_passes_to_what_one_unbounded_pass_leaves(
        tmp_path_factory, batches, keys_max, late):
    bounded = _log_of(batches, tmp_path_factory.mktemp("bounded"))
    unbounded = _log_of(batches, tmp_path_factory.mktemp("unbounded"))
    now = 1_000 + len(batches) + (KEEP_MS * 10 if late else 0)
    compact(unbounded, RECORD_CODEC, now, KEEP_MS)
    passes = 0
    while needs_compaction(bounded, now):
        p = plan(bounded, RECORD_CODEC, now, KEEP_MS, keys_max)
        assert len(offset_map(list(bounded.segments)[:-1], RECORD_CODEC, bounded.cleaned_upto,
                              bounded.segments[-1].base, keys_max)[0]) <= keys_max
        apply(p)
        passes += 1
        assert passes <= 200, "every pass must make progress"
    assert _all(bounded) == _all(unbounded)
    bounded.close()
    unbounded.close()


def test_a_full_map_ends_the_pass_at_the_first_key_it_could_not_hold(tmp_path):
    log = StreamLog(tmp_path / "p", segment_bytes=14)  # a segment per batch
    _append(log, [(b"a", b"1"), (b"b", b"1")], 1)  # offsets 0, 1
    _append(log, [(b"a", b"2"), (b"c", b"1")], 2)  # offsets 2, 3
    _append(log, [(b"b", b"2")], 3)  # offset 4
    _append(log, [(b"z", b"active")], 4)  # the active segment
    p = plan(log, RECORD_CODEC, 10, KEEP_MS, map_keys_max=2)
    assert p.upto == 3, "the map held a and b; c at offset 3 did not fit"
    apply(p)
    # a@0 went (a@2 is later); b@1 waits for a pass that sees b@4
    assert [o for o, *_ in _all(log)] == [1, 2, 3, 4, 5]
    assert needs_compaction(log, 10)
    compact(log, RECORD_CODEC, 10, KEEP_MS, map_keys_max=2)
    assert [o for o, *_ in _all(log)] == [2, 3, 4, 5]
    assert not needs_compaction(log, 10)


def test_the_dedupe_buffer_setting_bounds_the_cleaners_map():
    assert map_keys_for(OFFSET_MAP_ENTRY_BYTES * 1000) == 1000
    assert map_keys_for(1) == 1  # never a map that holds nothing
