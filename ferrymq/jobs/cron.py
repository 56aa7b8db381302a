"""Cron expressions evaluated in an IANA time zone, correct across daylight-saving changes.

Expressions are the standard five fields (minute hour day-of-month month day-of-week, with
Vixie cron's rule that a restricted day-of-month and day-of-week match when either does) or the
``@hourly``/``@daily``/``@weekly``/``@monthly``/``@yearly`` macros; croniter parses and walks
them. A fire time is an instant in ms since the epoch, read from the injected clock.

The rule every fire follows: **each wall-clock time of the zone's calendar that matches fires
exactly once.**

- A wall time skipped by spring-forward (02:30 on the day Paris jumps from 02:00 to 03:00) fires
  once, at the first instant that exists after it: the moment of the jump (03:00 local). Several
  skipped matches collapse into that one fire, and into a match at the jump itself. This is
  Vixie cron's treatment of fixed-time jobs: a daily 02:30 job still runs that day.
- A wall time repeated by fall-back (01:30 on the night New York goes back from 02:00 to 01:00)
  fires once, at its first occurrence (the earlier instant, still on summer time).

Unlike Vixie cron, the rule holds for wildcard expressions too: ``*/15 * * * *`` does not fire
again during the repeated hour, and ``30 * * * *`` fires at the jump for the skipped 02:30. One
rule for every expression keeps a fire's key (``cron:<name>:<fire_ms>``) unique per wall time; a
job that must run every N minutes of elapsed time belongs in UTC, where no wall time repeats.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

MISSED_POLICIES = ("skip", "once", "catch_up")
MAX_CATCH_UP = 1_000  # catch_up runs at most this many missed fires (the most recent), dropping older ones
MISFIRE_GRACE_MS = 60_000  # a fire found at most this late is on time, not missed
MAX_SHIFT = timedelta(hours=3)  # no zone has repeated more wall time than this at once since 1970
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


class CronError(ValueError):
    """A cron expression, time zone or missed-run policy that cannot be used."""


class CronSchedule:
    """One expression in one zone, parsed once: the instants it fires at, forwards or backwards."""

    __slots__ = ("expr", "tz", "zone")

    def __init__(self, expr: str, tz: str = "UTC") -> None:
        self.expr = expr.strip()
        self.tz = tz
        self.zone = _zone(tz)
        fields = self.expr.split()
        if not (len(fields) == 5 or (len(fields) == 1 and self.expr.startswith("@"))):
            raise CronError(f"cron expression {expr!r}: expected 5 fields (minute hour day month weekday)"
                            f" or a macro such as @daily, got {len(fields)} fields")
        try:
            croniter(self.expr, datetime(2000, 1, 1)).get_next(datetime)
        except CroniterBadDateError:
            raise CronError(f"cron expression {expr!r} never matches a date (such as 30 February)") from None
        except (CroniterError, ValueError, KeyError) as exc:
            raise CronError(f"cron expression {expr!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"CronSchedule({self.expr!r}, tz={self.tz!r})"

    def after(self, after_ms: int) -> Iterator[int]:
        """Fire instants strictly after ``after_ms``, earliest first (endless unless the
        expression stops matching)."""
        walls = croniter(self.expr, self.wall(after_ms))
        last = after_ms
        while True:
            try:
                at = self.instant(walls.get_next(datetime))
            except CroniterBadDateError:
                return
            if at > last:  # skips repeats collapsed by a gap and first passes behind a fold
                last = at
                yield at

    def before(self, at_ms: int) -> Iterator[int]:
        """Fire instants at or before ``at_ms``, latest first. The walk starts ``MAX_SHIFT`` of
        wall time later because, after a fall-back, later wall times map to earlier instants."""
        walls = croniter(self.expr, self.wall(at_ms) + MAX_SHIFT)
        last: int | None = None
        while True:
            try:
                at = self.instant(walls.get_prev(datetime))
            except CroniterBadDateError:
                return
            if at <= at_ms and (last is None or at < last):
                last = at
                yield at

    def fires(self, after_ms: int, until_ms: int, limit: int | None = None) -> list[int]:
        """Fire instants in ``(after_ms, until_ms]``, earliest first, at most ``limit``."""
        return list(islice(takewhile(lambda at: at <= until_ms, self.after(after_ms)), limit))

    def next_fire(self, after_ms: int) -> int | None:
        return next(self.after(after_ms), None)

    # --- wall time <-> instant ---------------------------------------------------------------

    def wall(self, at_ms: int) -> datetime:
        """The zone's local wall time at an instant, as a naive datetime."""
        return (_EPOCH + at_ms * _MS).astimezone(self.zone).replace(tzinfo=None)

    def instant(self, wall: datetime) -> int:
        """The instant a matching wall time fires at: its first occurrence, or for a wall time
        that does not exist (a spring-forward gap), the first instant after it."""
        first = _to_ms(wall.replace(tzinfo=self.zone, fold=0))
        if self.wall(first) == wall:
            return first
        # In a gap fold=0 reads the wall time with the offset before the jump (an instant after
        # the gap) and fold=1 with the offset after it (an instant before the gap).
        lo, hi = _to_ms(wall.replace(tzinfo=self.zone, fold=1)), first
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.wall(mid) >= wall:
                hi = mid
            else:
                lo = mid
        return hi


def next_fires(expr: str, tz: str, after_ms: int, until_ms: int, limit: int | None = None) -> list[int]:
    """Fire instants of ``expr`` in zone ``tz`` in ``(after_ms, until_ms]``, earliest first."""
    return CronSchedule(expr, tz).fires(after_ms, until_ms, limit)


def check_policy(missed: str) -> str:
    if missed not in MISSED_POLICIES:
        raise CronError(f"missed-run policy {missed!r}: use one of {', '.join(MISSED_POLICIES)}")
    return missed


def due(schedule: CronSchedule, missed: str, cursor_ms: int, now_ms: int, grace_ms: int = MISFIRE_GRACE_MS,
        max_catch_up: int = MAX_CATCH_UP) -> list[int]:
    """The fires of ``(cursor_ms, now_ms]`` to run now, earliest first. ``cursor_ms`` is how far
    the schedule has been evaluated. A fire at most ``grace_ms`` old is on time and always runs;
    older ones were missed (no scheduler was running) and follow the policy: ``skip`` runs
    none of them, ``once`` runs one (the latest) for all, ``catch_up`` runs each, the latest
    ``max_catch_up`` at most. Missed fires are found walking back from the present, so a long
    outage costs at most ``max_catch_up`` steps, never one per missed fire."""
    check_policy(missed)
    late_until = now_ms - grace_ms
    on_time = schedule.fires(max(cursor_ms, late_until), now_ms)
    if missed == "skip" or cursor_ms >= late_until:
        return on_time
    cap = 1 if missed == "once" else max_catch_up
    late = list(islice(takewhile(lambda at: at > cursor_ms, schedule.before(late_until)), cap))
    return late[::-1] + on_time


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Paris'") from None


def _to_ms(aware: datetime) -> int:
    return (aware - _EPOCH) // _MS
