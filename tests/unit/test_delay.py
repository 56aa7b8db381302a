"""DelayQueue: a timer heap released in due order, stable for equal due times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ferrymq.core.delay import DelayQueue


def test_empty_queue_has_no_deadline() -> None:
    q: DelayQueue[str] = DelayQueue()
    assert len(q) == 0
    assert q.next_deadline_ms() is None
    assert q.pop_due(10**12) == []


def test_pop_due_releases_in_due_order_up_to_now_inclusive() -> None:
    q: DelayQueue[str] = DelayQueue()
    for due, item in ((300, "c"), (100, "a"), (200, "b")):
        q.push(due, item)
    assert q.next_deadline_ms() == 100
    assert q.pop_due(99) == []
    assert q.pop_due(200) == ["a", "b"]
    assert len(q) == 1
    assert q.next_deadline_ms() == 300


def test_equal_due_times_keep_push_order() -> None:
    q: DelayQueue[int] = DelayQueue()
    for i in range(10):
        q.push(50, i)
    assert q.pop_due(50) == list(range(10))


def test_items_are_never_compared() -> None:
    q: DelayQueue[dict[str, int]] = DelayQueue()
    q.push(5, {"a": 1})
    q.push(5, {"b": 2})
    assert q.pop_due(5) == [{"a": 1}, {"b": 2}]


def test_items_pushed_in_the_past_are_due_at_once() -> None:
    q: DelayQueue[str] = DelayQueue()
    q.push(1000, "later")
    q.push(-5, "overdue")
    assert q.pop_due(0) == ["overdue"]


@given(
    pushes=st.lists(st.tuples(st.integers(0, 50), st.integers()), max_size=40),
    ticks=st.lists(st.integers(0, 60), max_size=8),
)
def test_pop_due_matches_a_sorted_model(
    pushes: list[tuple[int, int]], ticks: list[int]
) -> None:
    q: DelayQueue[tuple[int, int]] = DelayQueue()
    model = []
    for seq, (due, value) in enumerate(pushes):
        q.push(due, (seq, value))
        model.append((due, seq, value))
    model.sort()
    for now in sorted(ticks):
        due_now = [m for m in model if m[0] <= now]
        model = [m for m in model if m[0] > now]
        assert q.pop_due(now) == [(seq, value) for _, seq, value in due_now]
        assert len(q) == len(model)
        assert q.next_deadline_ms() == (model[0][0] if model else None)


def test_held_gives_at_most_limit_items_with_their_due_times_the_earliest_first() -> None:
    q: DelayQueue[str] = DelayQueue()
    for due, item in ((30, "c"), (10, "a"), (20, "b"), (40, "d")):
        q.push(due, item)
    assert q.held(10)[0] == (10, "a") and sorted(q.held(10)) == [(10, "a"), (20, "b"), (30, "c"), (40, "d")]
    assert len(q.held(2)) == 2 and q.held(2)[0] == (10, "a")
    assert len(q) == 4, "looking takes nothing"
