"""Retry schedules: exponential backoff with full jitter and a cap, or a fixed list of delays.

The jitter is a pure function of (seed, job id, attempt), so a schedule replays exactly under a
seeded ``Rng`` and the whole schedule of a job can be shown before it happens (``schedule()``).
"""

from __future__ import annotations

import hashlib

from ferrymq.jobs.options import JobOptions


def _unit(seed: int, job_id: str, attempt: int) -> float:
    """A uniform number in [0, 1) drawn from (seed, job id, attempt) alone."""
    digest = hashlib.blake2b(f"{seed}:{job_id}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def delay_ms(options: JobOptions, attempt: int, seed: int, job_id: str) -> int:
    """The wait before run ``attempt + 1`` after run ``attempt`` failed (attempt counts from 0)."""
    if isinstance(options.backoff, tuple):
        return options.backoff[min(attempt, len(options.backoff) - 1)]
    if options.backoff == "fixed":
        return options.min_delay_ms
    ceiling = min(options.max_delay_ms, options.min_delay_ms * 2 ** min(attempt, 62))
    # Full jitter (uniform in [0, ceiling]) spreads a burst of failures; the floor keeps a retry
    # from landing back on a broken dependency at once.
    return max(options.min_delay_ms // 2, int(ceiling * _unit(seed, job_id, attempt)))


def schedule(options: JobOptions, seed: int, job_id: str) -> list[int]:
    """Every delay this job would wait if each attempt failed: the visible retry schedule."""
    return [delay_ms(options, attempt, seed, job_id) for attempt in range(options.retries)]


def should_retry(options: JobOptions, attempt: int, exc: BaseException) -> bool:
    """Whether a failure of run ``attempt`` gets another run."""
    if attempt >= options.retries or isinstance(exc, options.fatal_on):
        return False
    return isinstance(exc, options.retry_on)
