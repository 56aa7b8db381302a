"""A job's options: what ``@app.job(...)`` takes, checked once at definition time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrymq.jobs.durations import Duration, maybe_ms, to_ms

BACKOFFS = ("exponential", "fixed")
DEFAULT_RETRIES = 3
MAX_PRIORITY = 9  # queues that opt into priorities get x-max-priority 9, as Celery and Dramatiq use


@dataclass(frozen=True, slots=True)
class JobOptions:
    name: str
    queue: str = "default"
    retries: int = DEFAULT_RETRIES
    backoff: str | tuple[int, ...] = "exponential"  # or a fixed schedule of delays (ms)
    min_delay_ms: int = 1_000
    max_delay_ms: int = 3_600_000
    timeout_ms: int | None = None
    soft_timeout_ms: int | None = None
    idempotent: bool = False
    priority: int = 0
    rate_limit: Any = None
    store_result: bool = False
    result_ttl_ms: int = 86_400_000
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    fatal_on: tuple[type[BaseException], ...] = ()


def make_options(name: str, *, queue: str = "default", retries: int = DEFAULT_RETRIES,
                 backoff: str | list[Duration] | tuple[Duration, ...] = "exponential",
                 min_delay: Duration = "1s", max_delay: Duration = "1h", timeout: Duration | None = None,
                 soft_timeout: Duration | None = None, idempotent: bool = False, priority: int = 0,
                 rate_limit: Any = None, store_result: bool = False, result_ttl: Duration = "1d",
                 retry_on: tuple[type[BaseException], ...] = (Exception,),
                 fatal_on: tuple[type[BaseException], ...] = ()) -> JobOptions:
    """Options from the decorator's keywords; a bad value fails here, where the job is defined."""
    if retries < 0:
        raise ValueError(f"job {name!r}: retries must be >= 0, not {retries}")
    if not 0 <= priority <= MAX_PRIORITY:
        raise ValueError(f"job {name!r}: priority must be 0..{MAX_PRIORITY}, not {priority}")
    schedule: str | tuple[int, ...]
    if isinstance(backoff, str):
        if backoff not in BACKOFFS:
            raise ValueError(f"job {name!r}: backoff must be one of {BACKOFFS} or a list of delays")
        schedule = backoff
    else:
        schedule = tuple(to_ms(d) for d in backoff)
        if not schedule:
            raise ValueError(f"job {name!r}: a fixed backoff schedule needs at least one delay")
    soft, hard = maybe_ms(soft_timeout), maybe_ms(timeout)
    if soft is not None and hard is not None and soft >= hard:
        raise ValueError(f"job {name!r}: soft_timeout must be shorter than timeout")
    return JobOptions(name, queue, retries, schedule, to_ms(min_delay), to_ms(max_delay), hard, soft,
                      idempotent, priority, rate_limit, store_result, to_ms(result_ttl),
                      tuple(retry_on), tuple(fatal_on))
