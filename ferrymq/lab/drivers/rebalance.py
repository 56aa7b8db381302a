"""Consumer-group rebalance: a topic of several partitions read by a group of member processes under
steady produce, while a member joins, one leaves cleanly (LeaveGroup) and one is killed -9 (the
coordinator notices only when its session times out). What it shows: the partition map before and
after each change, how long each change paused the partitions (the longest gap in a partition's
receipts around it), and the records read twice because their offsets were not committed when the
partitions moved (at-least-once: duplicates, never losses)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from ferrymq.lab import kafka
from ferrymq.lab.context import LabContext
from ferrymq.lab.drivers import group
from ferrymq.lab.explain import n
from ferrymq.lab.kafka_worker import ASSIGNED, BATCH
from ferrymq.lab.pacing import paced
from ferrymq.lab.recorder import Series
from ferrymq.lab.worker import Worker

MODES = ("kafka",)
CHANGES = ("join", "leave", "kill")


@dataclass
class Params:
    partitions: int = 6
    members: int = 3  # at the start; the changes add one, then take two away
    rate: float = 300.0  # records offered per second
    work_ms: float = 2.0  # per record
    batch: int = 50  # records per poll
    session_ms: int = 6000  # Kafka's minimum by default; the killed member's partitions wait this long
    size: int = 128

    def check(self) -> None:
        if self.members < 2 or self.partitions < self.members + 1:
            raise ValueError("members >= 2 and partitions > members (a joining member gets some)")
        if self.rate <= 0 or self.batch < 1:
            raise ValueError("rate must be > 0 and batch >= 1")


@dataclass
class GroupView:
    """The group as its members report it: partitions held, when each was last (re)assigned, and
    per partition the times its records came."""

    series: Series
    masks: dict[str, int] = field(default_factory=dict)
    assigned_at: dict[str, float] = field(default_factory=dict)
    receipts: dict[int, list[float]] = field(default_factory=dict)

    def on_record(self, member: str, kind: int, a: int, b: int) -> None:
        if kind == ASSIGNED:
            self.masks[member], self.assigned_at[member] = a, self.series.t()
        elif kind == BATCH:
            self.receipts.setdefault(a, []).append(self.series.t())

    def stable_since(self, t: float, partitions: int) -> bool:
        """Every live member reassigned after ``t``, the partitions shared out once each."""
        if not self.masks or any(self.assigned_at[m] <= t for m in self.masks):
            return False
        union = 0
        for mask in self.masks.values():
            if union & mask:
                return False
            union |= mask
        return union == (1 << partitions) - 1

    def row(self, after: str, names: list[str]) -> dict[str, Any]:
        row: dict[str, Any] = {"after": after, "at s": self.series.t()}
        for m in names:
            mask = self.masks.get(m)
            row[m] = "-" if mask is None else ",".join(str(p) for p in range(64) if mask >> p & 1) or "none"
        return row


async def _until(series: Series, t: float) -> None:
    await asyncio.sleep(max(0.0, t - series.t()))


async def _wait_stable(view: GroupView, t: float, p: Params) -> float | None:
    """Seconds from ``t`` until the group settled, or None if it did not within the session + 15 s."""
    deadline = time.monotonic() + p.session_ms / 1000.0 + 15.0
    while time.monotonic() < deadline:
        if view.stable_since(t, p.partitions):
            return round(max(view.assigned_at.values()) - t, 3)
        await asyncio.sleep(0.05)
    return None


def _options(p: Params) -> tuple[str, ...]:
    return ("--commit", "after", "--work-ms", str(p.work_ms), "--max-records", str(p.batch),
            "--session-ms", str(p.session_ms))


async def _change(ctx: LabContext, view: GroupView, what: str, p: Params, topic: str,
                  group_id: str) -> dict[str, Any]:
    """One membership change, marked on the timeline; returns when the group has settled again."""
    series, workers = view.series, {w.name: w for w in ctx.workers}
    t = series.t()
    if what == "join":
        label = f"c{p.members} joined"
        series.event("phase", f"c{p.members} joins")
        await group.kafka_worker(ctx, series, topic, group_id, _options(p), view.on_record, f"c{p.members}")
    elif what == "leave":
        label = "c1 left (LeaveGroup)"
        series.event("phase", "c1 leaves cleanly")
        await workers["c1"].stop()
    else:
        label = "c2 killed -9"
        series.event("phase", "c2 killed -9")
        workers["c2"].kill9()
    gone = {"leave": "c1", "kill": "c2"}.get(what)
    if gone:
        view.masks.pop(gone, None)
        view.assigned_at.pop(gone, None)
    settled = await _wait_stable(view, t, p)
    return {"change": label, "at s": t, "settled after s": settled}


def _pause(view: GroupView, t0: float, t1: float) -> tuple[float, int]:
    """The longest gap in any partition's receipts across [t0, t1), and how many partitions had a
    gap over a second (a partition idle at the change counts from its last receipt before it)."""
    worst, over = 0.0, 0
    for times in view.receipts.values():
        before = [x for x in times if x < t0]
        inside = [x for x in times if t0 <= x < t1]
        points = ([before[-1]] if before else [t0]) + inside
        gaps = [b - a for a, b in itertools.pairwise(points)] or [t1 - points[0]]
        worst = max(worst, max(gaps))
        over += max(gaps) > 1.0
    return round(worst, 3), over


async def _start_group(ctx: LabContext, series: Series, view: GroupView, topic: str, group_id: str,
                       p: Params) -> list[Worker]:
    workers = await asyncio.gather(*(group.kafka_worker(ctx, series, topic, group_id, _options(p),
                                                        view.on_record, f"c{i}") for i in range(p.members)))
    await _wait_stable(view, -1e9, p)
    return list(workers)


async def run(ctx: LabContext, p: Params) -> None:
    ctx.check_faults("rebalance")
    bootstrap = ctx.target.kafka_bootstrap
    series = ctx.series(f"{p.members} members, {p.partitions} partitions")
    view = GroupView(series)
    topic, group_id = ctx.name("rebalance"), ctx.name("g-rebalance")
    await kafka.create_topic(bootstrap, topic, p.partitions)
    await _start_group(ctx, series, view, topic, group_id, p)
    producer = await kafka.Producer(series, bootstrap, topic, size=p.size, key=lambda i: b"%d" % i).open()
    series.begin()
    view.assigned_at = dict.fromkeys(view.masks, -1.0)
    names = [f"c{i}" for i in range(p.members + 1)]
    maps, changes, dups = [view.row("start", names)], [], []
    async with group.sampling_lag(series, bootstrap, topic, group_id), ctx.faults_on(series, ctx.duration):
        load = asyncio.create_task(paced(p.rate, ctx.duration, producer.send))
        for i, what in enumerate(CHANGES):
            await _until(series, ctx.duration * (i + 1) / (len(CHANGES) + 1))
            dups.append(series.ledger.books()["duplicates"])
            changes.append(await _change(ctx, view, what, p, topic, group_id))
            maps.append(view.row(changes[-1]["change"], names))
        await load
        await producer.close()
        series.figure("settled", await group.settle_quiet(series, quiet_s=p.session_ms / 1000.0 + 2.0))
    _report(series, view, maps, changes, [*dups, series.ledger.books()["duplicates"]], p)


def _report(series: Series, view: GroupView, maps: list[dict[str, Any]], changes: list[dict[str, Any]],
            dups: list[int], p: Params) -> None:
    ends = [c["at s"] for c in changes[1:]] + [series.t()]
    for c, end, d0, d1 in zip(changes, ends, dups, dups[1:]):
        c["pause s"], c["partitions paused > 1 s"] = _pause(view, c["at s"], end)
        c["records read twice"] = d1 - d0
    series.table("partition map (member: partitions)", maps)
    series.table("changes", changes)
    series.figure("session_timeout_s", p.session_ms / 1000.0)
    for what, c in zip(CHANGES, changes):
        series.figure(f"{what}_pause_s", c["pause s"])
        series.figure(f"{what}_duplicates", c["records read twice"])
        series.figure(f"{what}_settled_s", c["settled after s"])


def explain(run: dict[str, Any]) -> list[str]:
    out = []
    for s in run["series"]:
        f = s["figures"]
        for c in s["tables"]["changes"]:
            settled = (f"the group settled after {n(c['settled after s'])} s"
                       if c["settled after s"] is not None else "the group had not settled")
            out.append(f"{s['name']}: {c['change']} at {n(c['at s'])} s: {settled}, partitions paused up to "
                       f"{n(c['pause s'])} s ({n(c['partitions paused > 1 s'])} of them over 1 s), and "
                       f"{n(c['records read twice'])} records were read twice (their offsets were not "
                       "committed when the partitions moved).")
        out.append(f"{s['name']}: the killed member's partitions waited {n(f['kill_pause_s'])} s against "
                   f"{n(f['leave_pause_s'])} s for the clean leave: without LeaveGroup the coordinator "
                   f"waits out the session timeout ({n(f['session_timeout_s'])} s).")
    return out
