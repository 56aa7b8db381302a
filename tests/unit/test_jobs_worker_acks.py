"""The worker's ack coalescing, checked against RabbitMQ's ack rules in a model of the broker's
unacked set: whatever order jobs finish in, every frame names an unacked tag and every finished
delivery ends up settled exactly once."""

from __future__ import annotations

import struct
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from ferrymq.jobs.stride import StridePicker
from ferrymq.jobs.worker import Session

ACK_FRAME = struct.Struct(">BHIHHQBB")


def broker_applies(frames: bytes, unacked: set[int], requeued: set[int]) -> None:
    for at in range(0, len(frames), ACK_FRAME.size):
        _, _, _, _, method, tag, bits, _ = ACK_FRAME.unpack_from(frames, at)
        assert tag in unacked, f"PRECONDITION_FAILED - unknown delivery tag {tag}"
        if method == 80 and bits & 1:
            unacked.difference_update({t for t in unacked if t <= tag})
        else:
            unacked.discard(tag)
            if method == 90:
                requeued.add(tag)


@given(st.data())
def test_any_completion_order_settles_every_tag_once_without_an_unknown_tag(data):
    n = data.draw(st.integers(1, 60))
    order = data.draw(st.permutations(list(range(1, n + 1))))
    requeue = data.draw(st.sets(st.sampled_from(order)))
    cuts = sorted(data.draw(st.sets(st.integers(1, n), max_size=10)))
    session = SimpleNamespace(acked_upto=0, settled={})
    unacked, requeued = set(range(1, n + 1)), set()
    start = 0
    for cut in [*cuts, n]:
        batch = [(tag, tag in requeue) for tag in order[start:cut]]
        start = cut
        if batch:
            broker_applies(Session._settle_frames(session, batch), unacked, requeued)  # type: ignore[arg-type]
    assert unacked == set(), "every finished delivery is settled"
    assert requeued == requeue


def test_weights_split_picks_in_proportion_and_an_idle_queue_cannot_bank_turns():
    picker = StridePicker({"critical": 100, "default": 50, "bulk": 10})
    full = {"critical": [1], "default": [1], "bulk": [1]}
    picks = [picker.pick(full) for _ in range(1600)]
    assert (picks.count("critical"), picks.count("default"), picks.count("bulk")) == (1000, 500, 100)
    only_bulk = {"critical": [], "default": [], "bulk": [1]}
    for _ in range(500):
        assert picker.pick(only_bulk) == "bulk"
    picks = [picker.pick(full) for _ in range(160)]
    shares = (picks.count("critical"), picks.count("default"), picks.count("bulk"))
    assert all(abs(got - want) <= 2 for got, want in zip(shares, (100, 50, 10), strict=True)), shares
