"""Series stand-ins. ``Watched`` forwards everything to the real series and then tells the driver
about each receipt (per-key ordering checks, pauses between receipts): the worker processes and the
Kafka group members only ever call ``received``/``gauge``/``count``, so a driver hands them a
``Watched`` series where it needs to look at the stream of receipts itself. ``Tee`` is one
producer's ledger kept in several series at once (fan-out: every subscriber expects every
message). ``lag_gauge`` samples confirmed-but-not-processed into a series, in both models alike."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

from ferrymq.lab.recorder import Series

Hook = Callable[[int, bool], None]  # (message id, first receipt?)


class Watched:
    """``series`` with ``hooks`` called after every receipt."""

    def __init__(self, series: Series, *hooks: Hook) -> None:
        self._series = series
        self._hooks = list(hooks)

    def received(self, msg_id: int, sent_ns: int, redelivered: bool = False) -> bool:
        first = self._series.received(msg_id, sent_ns, redelivered)
        for hook in self._hooks:
            hook(msg_id, first)
        return first

    def __getattr__(self, name: str) -> Any:
        return getattr(self._series, name)

    def as_series(self) -> Series:
        return cast(Series, self)


class KeyOrder:
    """Per key, the ids must arrive in increasing order: a first receipt of an id lower than one
    already seen for its key is a violation (a duplicate is the ledger's business, not this one's)."""

    def __init__(self, key_of: Callable[[int], int]) -> None:
        self.key_of = key_of
        self.last: dict[int, int] = {}
        self.violations = 0
        self.keys_violated: set[int] = set()

    def __call__(self, msg_id: int, first: bool) -> None:
        if not first:
            return
        key = self.key_of(msg_id)
        last = self.last.get(key, -1)
        if msg_id < last:
            self.violations += 1
            self.keys_violated.add(key)
        else:
            self.last[key] = msg_id


class Gaps:
    """The longest stretch without any receipt once receipts have started (a rebalance pauses a
    whole consumer group; competing consumers on a queue carry on)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self.now = now
        self.last: float | None = None
        self.longest = 0.0
        self.longest_at = 0.0

    def __call__(self, msg_id: int, first: bool) -> None:
        t = self.now()
        if self.last is not None and t - self.last > self.longest:
            self.longest, self.longest_at = t - self.last, self.last
        self.last = t


class Tee:
    """What a producer calls on its series, done on every one of ``series`` (they number messages
    alike, since they all see every send)."""

    def __init__(self, series: list[Series]) -> None:
        self.all = series

    def next_id(self) -> int:
        ids = {s.next_id() for s in self.all}
        assert len(ids) == 1, "the tee'd series were numbered apart"
        return ids.pop()

    def now_ns(self) -> int:
        return self.all[0].now_ns()

    def sent(self, n: int = 1) -> None:
        for s in self.all:
            s.sent(n)

    def confirmed(self, msg_id: int) -> None:
        for s in self.all:
            s.confirmed(msg_id)

    def count(self, what: str, n: int = 1) -> None:
        for s in self.all:
            s.count(what, n)

    def as_series(self) -> Series:
        return cast(Series, self)


@contextlib.asynccontextmanager
async def lag_gauge(series: Series, every_s: float = 0.25) -> AsyncIterator[None]:
    """``lag``: messages confirmed but not yet processed by this series' consumers."""
    async def loop() -> None:
        while True:
            series.gauge("lag", max(0, series.totals["confirmed"] - series.totals["received"]))
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
