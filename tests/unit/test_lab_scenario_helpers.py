"""The pure pieces under scenarios 5-7: the worker's idle gauge in a series, the books sentence for a
drop-head queue, a consumer's idle share across a SIGSTOP, and the poison message's history table."""

from __future__ import annotations

from ferrymq.lab.context import _recording
from ferrymq.lab.drivers.prefetch_sweep import Consumer
from ferrymq.lab.explain import books
from ferrymq.lab.poison_history import HEAD_ROWS, TAIL_ROWS, History
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import FAILED, FAILED_REDELIVERED, IDLE, PROCESSED


class Clock:
    def __init__(self) -> None:
        self.ns = 0

    def __call__(self) -> int:
        return self.ns


def test_the_idle_gauge_is_the_share_of_time_since_the_last_report_spent_waiting() -> None:
    clock = Clock()
    s = Series("x", "t", now_ns=clock)
    seen: list[int] = []
    record = _recording(s, "c0", lambda kind, a, b: seen.append(kind))
    record(IDLE, 1000, 0)  # the first report only sets the mark
    clock.ns = 500_000_000
    record(IDLE, 1250, 0)  # 250 ms idle out of 500 ms
    record(PROCESSED, 0, 0)
    assert s.buckets[1].gauges["idle:c0"] == 50.0
    assert seen == [IDLE, IDLE, PROCESSED] and s.totals["received"] == 1


def test_drop_head_drops_are_not_called_losses_but_a_real_loss_beyond_them_is() -> None:
    s = {"name": "q", "books": {"confirmed": 100, "lost": 30, "duplicates": 0},
         "totals": {"redelivered": 0, "dead_lettered": 0, "dropped": 30}}
    assert "none lost beyond the 30 dropped by the queue's overflow policy" in books(s)
    s["totals"]["dropped"] = 25
    assert "5 LOST beyond the 25 dropped" in books(s)


def test_a_consumers_idle_share_starts_at_its_first_report_after_the_resume() -> None:
    c = Consumer("fast1", 1.0)
    ms = 1_000_000
    # idle all along before a stop; the first report after the resume holds the stopped time too
    c.idle = [(0, 0), (250 * ms, 250), (2000 * ms, 2000), (2250 * ms, 2100), (2500 * ms, 2200)]
    assert c.idle_pct(1900 * ms, 2500 * ms) == 40.0  # 200 ms idle of the 500 ms from its first report


def test_the_poison_history_keeps_both_ends_of_a_storm_and_its_dead_letter() -> None:
    clock = Clock()
    s = Series("x", "t", now_ns=clock)
    h = History(poison_id=7, published_t=0.0)
    observe = h.observer(s, "c0", FAILED, FAILED_REDELIVERED)
    observe(FAILED, 7, 0)
    for i in range(1, 30):
        clock.ns = i * 10_000_000
        observe(FAILED_REDELIVERED, 7, 0)
    observe(FAILED, 8, 0)  # another message's failure is not the poison's
    h.dead_lettered(0.5, [{"count": 1, "reason": b"delivery_limit"}])
    h.record(s)
    rows = s.tables["the poison message's deliveries"]
    assert len(rows) == HEAD_ROWS + TAIL_ROWS + 1 and rows[-2]["delivery"] == 30
    assert rows[0]["redelivered"] is False and rows[1]["redelivered"] is True
    assert rows[-1]["x-death"] == [{"count": 1, "reason": "delivery_limit"}]
    assert s.figures["poison_deliveries"] == 30 and s.figures["poison_x_death_reason"] == "delivery_limit"
    assert s.figures["poison_redeliveries_per_s"] == round(29 / 0.29, 1)
