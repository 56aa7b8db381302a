"""Fetch sizing against real stream logs: what one Fetch answer may carry under fetch.max.bytes and
max.partition.fetch.bytes, with Kafka's single exception (KIP-74: the first batch of the first
non-empty partition is returned whole even when larger, so a consumer always progresses)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import partitions
from ferrymq.protocols.kafka.fetch import FetchPartition, FetchRequest
from ferrymq.protocols.kafka.produce import ProduceRequest
from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.storage.stream_store import StreamStore

# per partition: the value size of each batch (one record a batch), so batch sizes differ
SIZES = {0: [900, 300, 300, 2500, 100, 700, 300, 300], 1: [3000, 200, 200, 200], 2: [400, 400, 400]}


class _Sink:
    def note_append(self, lg: object) -> None: ...

    def note_write_error(self) -> None: ...


@pytest.fixture(scope="module")
def topics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TopicRegistry]:
    reg = TopicRegistry(StreamStore(Path(tmp_path_factory.mktemp("sizing"))), 1, partitions.producers_from)
    reg.create("t", len(SIZES), {})
    for p, sizes in SIZES.items():
        for i, size in enumerate(sizes):
            batch = bytearray(encode_batch([(None, bytes(size), [])], 1_000 + i))
            req = ProduceRequest(None, 1, 1000, [("t", [(p, batch)])])
            assert partitions.produce(reg, req, _Sink())[0][1][0].error_code == 0
    yield reg
    reg.delete("t")


def _fetch(reg: TopicRegistry, max_bytes: int, parts: list[tuple[int, int, int]]) -> list[list[int]]:
    """Each asked partition's answered batch sizes; (partition, offset, partition max bytes) each."""
    req = FetchRequest(0, 1, max_bytes, 0, [("t", [FetchPartition(p, o, m) for p, o, m in parts])])
    out, total, failed = partitions.gather(reg, req)
    assert not failed
    answered = [_batch_sizes(b"".join(d.records)) for d in out[0][1]]
    assert total == sum(map(sum, answered))
    return answered


def _batch_sizes(buf: bytes) -> list[int]:
    sizes, pos = [], 0
    while pos < len(buf):
        size = 12 + struct.unpack_from(">i", buf, pos + 8)[0]
        assert pos + size <= len(buf), "a partial batch was answered"
        sizes.append(size)
        pos += size
    return sizes


def _stored(reg: TopicRegistry, p: int) -> list[int]:
    return _batch_sizes(reg.get("t").logs[p].read(0, 1 << 30))


def test_fetch_max_bytes_caps_the_answer_below_the_partition_limit(topics):
    stored = _stored(topics, 0)
    got = _fetch(topics, stored[0] + stored[1] + stored[2] + 10, [(0, 0, 1 << 20)])
    assert got == [stored[:3]]


def test_partition_max_bytes_caps_each_partition_and_the_rest_goes_to_the_next(topics):
    s0, s2 = _stored(topics, 0), _stored(topics, 2)
    got = _fetch(topics, 1 << 20, [(0, 0, s0[0] + s0[1] + 5), (2, 0, s2[0] + s2[1] + 5)])
    assert got == [s0[:2], s2[:2]]


def test_only_the_first_non_empty_partition_may_exceed_with_its_first_batch(topics):
    s0, s1 = _stored(topics, 0), _stored(topics, 1)
    small = s1[0] - 1  # both partitions open with a batch larger than this
    assert _fetch(topics, 1 << 20, [(1, 0, small), (0, 3, s0[3] - 1)]) == [s1[:1], []]
    assert _fetch(topics, s0[3] - 1, [(0, 3, 1 << 20), (1, 0, 1 << 20)]) == [s0[3:4], []]
    end = len(SIZES[2])  # an empty partition first: the next one is the first non-empty
    assert _fetch(topics, 1 << 20, [(2, end, 10), (1, 0, 10)]) == [[], s1[:1]]


@settings(max_examples=150, deadline=None)
@given(max_bytes=st.integers(1, 12_000), offsets=st.lists(st.integers(0, 8), min_size=3, max_size=3),
       limits=st.lists(st.integers(1, 6_000), min_size=3, max_size=3), order=st.permutations([0, 1, 2]))
def test_an_answer_is_whole_batches_within_both_limits_but_the_first(topics, max_bytes, offsets, limits,
                                                                    order):
    parts = [(p, min(offsets[p], len(SIZES[p])), limits[p]) for p in order]
    got = _fetch(topics, max_bytes, parts)
    first = next((i for i, sizes in enumerate(got) if sizes), None)
    for i, ((p, offset, limit), sizes) in enumerate(zip(parts, got, strict=True)):
        assert sizes == _stored(topics, p)[offset:][:len(sizes)]  # from the offset asked, in order
        if i == first:
            assert sum(sizes) <= min(limit, max_bytes) or len(sizes) == 1
        else:
            assert sum(sizes) <= limit
    flat = [s for sizes in got for s in sizes]
    assert sum(flat) <= max_bytes or flat == got[first][:1]
    asked_data = [offset < len(SIZES[p]) for p, offset, _ in parts]
    assert (first is None) == (not any(asked_data))  # a fetch with data to give always progresses
