"""A sampling profiler inside a worker process, for machines without py-spy: a daemon thread
looks at every other thread each ``INTERVAL_S`` and charges the CPU time (µs, from the thread's
own CPU clock) that thread used since the last look to the stack it is in now (``sys._current_frames``):
the leaf, with its line, as "self", each function on the stack as "total". Idle threads (blocked
in a lock, a select, a sleep) use no CPU and so drop out, as in py-spy's default view. A
thread stopped for the GIL shows where it was running when it let go, a fair proxy.
Its own cost is the GIL time of one look per interval (a few % of a core); it is on only when
the runner asks (``SAMPLE_ENV``), so a profiled drain's figure carries that cost.

Each process rewrites ``<dir>/<pid>.prof.json`` every ``DUMP_S``; ``merge`` sums them.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

SAMPLE_ENV = "FERRYMQ_JOBBENCH_SAMPLE"  # the directory the samples go to
INTERVAL_S = 0.002
DUMP_S = 0.2
TOP = 25


def _key(frame: FrameType) -> str:
    code = frame.f_code
    parts = Path(code.co_filename).parts
    return f"{code.co_name} ({'/'.join(parts[-2:])}:{code.co_firstlineno})"


def _leaf(frame: FrameType) -> str:
    """The leaf with its current line and that line's text: a thread blocked in C (a lock, a
    socket read, a sleep) shows as the Python line that called in, so the text says which."""
    code = frame.f_code
    text = linecache.getline(code.co_filename, frame.f_lineno).strip()[:60]
    return f"{_key(frame)} line {frame.f_lineno}: {text}"


def _cpu_ns(ident: int) -> int:
    """The thread's own CPU clock (ns resolution, unlike /proc's 10 ms ticks); 0 once it is gone."""
    try:
        return time.clock_gettime_ns(time.pthread_getcpuclockid(ident))
    except (OSError, OverflowError):
        return 0


def _sample(me: int, seen_ns: dict[int, int], own: Counter[str], total: Counter[str]) -> None:
    frames = sys._current_frames()
    for thread in threading.enumerate():
        ident = thread.ident
        if ident == me or ident not in frames:
            continue
        now = _cpu_ns(ident or 0)
        used, seen_ns[ident or 0] = (now - seen_ns.get(ident or 0, now)) // 1000, now
        if used <= 0:
            continue
        frame: FrameType | None = frames[ident]
        own[_leaf(frames[ident])] += used
        stack = set()
        while frame is not None:
            stack.add(_key(frame))
            frame = frame.f_back
        for key in stack:
            total[key] += used


def _loop(out: Path) -> None:
    me, own, total, samples = threading.get_ident(), Counter[str](), Counter[str](), 0
    seen: dict[int, int] = {}
    last = time.monotonic()
    while True:
        _sample(me, seen, own, total)
        samples += 1
        if time.monotonic() - last >= DUMP_S:
            last = time.monotonic()
            data = {"samples": samples, "cpu_us": sum(own.values()),
                    "self": own.most_common(TOP * 4), "total": total.most_common(TOP * 4)}
            tmp = out / f"{os.getpid()}.prof.tmp"
            tmp.write_text(json.dumps(data))
            tmp.replace(out / f"{os.getpid()}.prof.json")
        time.sleep(INTERVAL_S)


def start_if_asked() -> None:
    where = os.environ.get(SAMPLE_ENV)
    if where:
        threading.Thread(target=_loop, args=(Path(where),), daemon=True, name="jobbench-sampler").start()


def merge(out: Path, top: int = TOP) -> dict[str, Any]:
    """Every process's counts summed: the top frames by self and by total CPU time."""
    own, total, samples, threads = Counter[str](), Counter[str](), 0, 0
    for f in out.glob("*.prof.json"):
        data = json.loads(f.read_text())
        samples += data["samples"]
        threads += data["cpu_us"]
        own.update(dict(data["self"]))
        total.update(dict(data["total"]))
    return {"samples": samples, "cpu_us": threads, "self": own.most_common(top),
            "total": total.most_common(top)}
