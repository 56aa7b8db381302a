"""Cron fire times across DST changes (Europe/Paris and America/New_York, 2026) and the
missed-run policies, driven by a ManualClock where a scheduler loop is simulated."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferrymq.clock import ManualClock
from ferrymq.jobs.cron import MAX_CATCH_UP, CronError, CronSchedule, due, next_fires

MINUTE = 60_000
HOUR = 60 * MINUTE


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def local(at_ms: int, tz: str) -> str:
    return datetime.fromtimestamp(at_ms / 1000, ZoneInfo(tz)).isoformat()


def run_loop(expr: str, tz: str, start: str, hours: int, step_ms: int = MINUTE) -> list[int]:
    """A scheduler loop on a ManualClock: every step, run what is due and move the cursor."""
    clock = ManualClock(ms(start))
    schedule, cursor, fired = CronSchedule(expr, tz), clock.now_ms(), []
    for _ in range(hours * HOUR // step_ms):
        clock.advance(step_ms)
        fired += due(schedule, "skip", cursor, clock.now_ms())
        cursor = clock.now_ms()
    return fired


def test_paris_daily_0230_skipped_by_spring_forward_fires_once_at_the_jump():
    fired = run_loop("30 2 * * *", "Europe/Paris", "2026-03-28T00:00+00:00", 72)
    assert [local(f, "Europe/Paris") for f in fired] == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]


def test_paris_quarter_hours_collapse_the_skipped_hour_into_the_one_fire_at_0300():
    fired = next_fires("*/15 * * * *", "Europe/Paris", ms("2026-03-29T00:40+00:00"),
                       ms("2026-03-29T01:20+00:00"))
    assert [local(f, "Europe/Paris") for f in fired] == [
        "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"]


def test_paris_daily_0230_repeated_by_fall_back_fires_once_on_summer_time():
    fired = run_loop("30 2 * * *", "Europe/Paris", "2026-10-24T12:00+00:00", 40)
    assert [local(f, "Europe/Paris") for f in fired] == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]


def test_new_york_daily_0230_skipped_by_spring_forward_fires_at_0300_edt():
    fired = run_loop("30 2 * * *", "America/New_York", "2026-03-07T12:00+00:00", 48)
    assert [local(f, "America/New_York") for f in fired] == [
        "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]


def test_new_york_daily_0130_repeated_by_fall_back_fires_once():
    fired = run_loop("30 1 * * *", "America/New_York", "2026-10-31T12:00+00:00", 48)
    assert [local(f, "America/New_York") for f in fired] == [
        "2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]


def test_every_minute_through_new_york_fall_back_never_repeats_a_wall_time():
    fired = run_loop("* * * * *", "America/New_York", "2026-11-01T04:00+00:00", 4)
    walls = [local(f, "America/New_York")[:16] for f in fired]
    assert len(walls) == len(set(walls)) == 3 * 60  # 4 hours elapsed, the repeated hour is silent
    assert fired == sorted(fired)


def test_every_minute_through_paris_spring_forward_fires_every_elapsed_minute():
    fired = run_loop("* * * * *", "Europe/Paris", "2026-03-29T00:00+00:00", 2)
    assert fired == [ms("2026-03-29T00:00+00:00") + i * MINUTE for i in range(1, 121)]


@settings(max_examples=40, deadline=None)
@given(start=st.integers(ms("2026-01-01T00:00+00:00"), ms("2026-12-31T00:00+00:00")),
       span=st.integers(1, 30 * HOUR), zone=st.sampled_from(["Europe/Paris", "America/New_York", "UTC"]),
       expr=st.sampled_from(["*/7 * * * *", "30 2 * * *", "0 * * * *", "15 1,2,3 * * 0"]))
def test_walking_back_finds_exactly_the_fires_walking_forward_finds(start, span, zone, expr):
    schedule = CronSchedule(expr, zone)
    forward = schedule.fires(start, start + span)
    backward = [at for at in _take_while_after(schedule.before(start + span), start)]
    assert backward[::-1] == forward


def _take_while_after(instants, floor):
    for at in instants:
        if at <= floor:
            return
        yield at


def test_missed_runs_skip_fires_nothing_from_the_past():
    hourly = CronSchedule("0 * * * *")
    assert due(hourly, "skip", ms("2026-05-01T10:00+00:00"), ms("2026-05-01T12:30+00:00")) == []


def test_missed_runs_once_fires_one_run_for_all_missed():
    hourly = CronSchedule("0 * * * *")
    assert due(hourly, "once", ms("2026-05-01T10:00+00:00"), ms("2026-05-01T12:30+00:00")) == [
        ms("2026-05-01T12:00+00:00")]


def test_missed_runs_catch_up_fires_each_missed_one_in_order():
    hourly = CronSchedule("0 * * * *")
    assert due(hourly, "catch_up", ms("2026-05-01T10:00+00:00"), ms("2026-05-01T12:30+00:00")) == [
        ms("2026-05-01T11:00+00:00"), ms("2026-05-01T12:00+00:00")]


def test_catch_up_is_bounded_to_the_most_recent_fires():
    now = ms("2026-05-04T00:00:30+00:00")
    fired = due(CronSchedule("* * * * *"), "catch_up", ms("2026-05-01T00:00+00:00"), now)
    assert len(fired) == MAX_CATCH_UP + 1  # the bound on missed fires, plus the one on time
    assert fired[-1] == ms("2026-05-04T00:00+00:00") and fired == sorted(fired)
    assert fired[0] == fired[-1] - MAX_CATCH_UP * MINUTE


@pytest.mark.parametrize("missed", ["skip", "once", "catch_up"])
def test_a_fire_found_within_the_grace_is_on_time_under_every_policy(missed):
    hourly = CronSchedule("0 * * * *")
    cursor, now = ms("2026-05-01T11:59:50+00:00"), ms("2026-05-01T12:00:20+00:00")
    assert due(hourly, missed, cursor, now) == [ms("2026-05-01T12:00+00:00")]


@pytest.mark.parametrize(("expr", "tz", "words"), [
    ("* * * * * *", "UTC", "expected 5 fields"),
    ("61 * * * *", "UTC", "'61 * * * *'"),
    ("* * *", "UTC", "expected 5 fields"),
    ("0 9 * * *", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("0 0 30 2 *", "UTC", "never matches a date"),
])
def test_bad_expression_or_zone_is_one_clear_error(expr, tz, words):
    with pytest.raises(CronError, match=words.replace("*", r"\*")):
        CronSchedule(expr, tz)


def test_a_leap_day_schedule_is_valid_and_fires_in_the_next_leap_year():
    assert local(CronSchedule("0 0 29 2 *").next_fire(ms("2026-06-01T00:00+00:00")) or 0, "UTC") == (
        "2028-02-29T00:00:00+00:00")


def test_unknown_missed_policy_is_one_clear_error():
    with pytest.raises(CronError, match="use one of skip, once, catch_up"):
        due(CronSchedule("0 * * * *"), "twice", 0, HOUR)
