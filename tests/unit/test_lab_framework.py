"""QueueLab's pieces without a broker: the fault grammar, scenario validation (one line per
mistake), the ledger's books and the recovery measure."""

from __future__ import annotations

import pytest

from ferrymq.lab import body
from ferrymq.lab.faults import parse_fault
from ferrymq.lab.recorder import Series
from ferrymq.lab.scenario import ScenarioError, builtin_names, load, parse
from ferrymq.lab.summary import summarize


def test_fault_grammar_resolves_seconds_and_shares_of_the_run() -> None:
    f = parse_fault("stop@40%+5s")
    assert (f.action, f.subject, f.at_s(60), f.duration_s(60)) == ("stop", "broker", 24.0, 5.0)
    g = parse_fault("slow:consumer2@500ms+10%,ms=25")
    assert (g.subject, g.index, g.at_s(30), g.duration_s(30)) == ("consumer", 2, 0.5, 3.0)
    assert g.options == {"ms": 25.0}
    assert parse_fault("kill@20s").duration is None


@pytest.mark.parametrize("text, needle", [
    ("explode@1s", "unknown action"),
    ("stop@1s", "needs a duration"),
    ("delay:consumer@1s+1s", "not a consumer"),
    ("kill@soon", "expected ACTION"),
])
def test_a_bad_fault_gets_one_line_naming_it(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_fault(text)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text, needle", [
    ('driver = "task_queue"\nbogus = 1', "unknown key(s) bogus"),
    ('name = "x"', "`driver` is missing"),
    ('driver = "no_such_driver"', "no driver 'no_such_driver'"),
    ('driver = "task_queue"\n[params]\nworkers = "many"', "parameter 'workers'"),
    ('driver = "task_queue"\n[params]\nspeed = 3', "unknown parameter(s) speed"),
    ('driver = "task_queue"\nduration = -1', "duration must be a positive number"),
    ('driver = "task_queue"\nfaults = ["kill@"]', "fault 'kill@'"),
    ('driver = "task_queue"\nname = ', "not valid TOML"),
])
def test_a_scenario_file_with_a_mistake_gets_one_line(text: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse(text, "mine.toml")
    assert needle in str(exc.value), str(exc.value)
    assert str(exc.value).startswith("mine.toml") or "driver" in str(exc.value)


def test_every_builtin_scenario_loads_and_has_a_summary() -> None:
    assert builtin_names()
    for name in builtin_names():
        s = load(name)
        assert s.summary and s.description and s.short_duration <= 30, name


def test_the_ledger_counts_losses_and_duplicates_against_what_was_confirmed() -> None:
    clock = iter(range(0, 10**12, 10**6))
    s = Series("x", "t", interval_s=0.5, now_ns=lambda: next(clock))
    ids = [s.next_id() for _ in range(5)]
    for i in ids[:4]:
        s.confirmed(i)  # id 4 was sent but never confirmed
    for i in (0, 1, 1, 4):
        s.received(i, 0)
    books = s.ledger.books()
    assert books == {"confirmed": 4, "lost": 2, "duplicates": 1, "unique_received": 3,
                     "received_unconfirmed": 1}


def test_recovery_is_measured_from_the_end_of_a_fault_to_half_the_earlier_rate() -> None:
    now = [0]
    s = Series("x", "t", interval_s=1.0, now_ns=lambda: now[0])
    for sec in range(20):
        now[0] = sec * 10**9 + 1
        if sec == 10:
            s.event("fault", "stop@10s+3s", 3.0)
        if not 10 <= sec < 15:  # nothing flows during the fault and for 2 s after it
            for _ in range(100):
                s.received(s.next_id(), now[0])
    out = summarize(s)
    assert out["faults"][0]["recover_s"] == 3.0  # back in the bucket ending at 16 s; the fault ended at 13 s


def test_the_body_carries_id_and_send_time_and_ignores_foreign_messages() -> None:
    assert body.decode(body.encode(42, 123, 100)) == (42, 123)
    assert len(body.encode(1, 2, 100)) == 100
    assert body.decode(b"not the lab's message at all") is None
