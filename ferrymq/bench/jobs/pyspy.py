"""py-spy over a worker tree, when it is installed: ``py-spy record --subprocesses`` attached to the
workers' first process once the first job has run (idle threads left out, py-spy's default;
``--nonblocking``: the workers are not paused per sample, which slowed them several-fold), collapsed
stacks to a file, then the top frames by self (leaf) and by total (on the stack) samples.
Without py-spy the runner falls back to the in-process ``sampler``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE_HZ = 1000
TOP = 25


def binary() -> str | None:
    return shutil.which("py-spy", path=sys.prefix + "/bin") or shutil.which("py-spy")


def attach(pid: int, out: Path) -> subprocess.Popen[bytes] | None:
    exe = binary()
    if exe is None:
        return None
    with (out / "py-spy.log").open("ab") as log:
        argv = [exe, "record", "--pid", str(pid), "--subprocesses", "--format", "raw", "--rate", str(RATE_HZ),
                "--nonblocking", "--gil", "--output", str(out / "py-spy.txt")]
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def finish(proc: subprocess.Popen[bytes] | None, out: Path, timeout_s: float = 20.0) -> dict[str, Any]:
    """Stop py-spy as Ctrl-C does (it writes its file then) and summarise what it wrote."""
    if proc is None:
        return {"error": "py-spy is not installed"}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    path = out / "py-spy.txt"
    return summarise(path.read_text()) if path.exists() else {"error": "py-spy wrote no profile"}


def _frames(stack: str) -> list[str]:
    """A collapsed stack's frames, root first, without py-spy's process/thread prefix frames."""
    return [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]


def summarise(text: str, top: int = TOP) -> dict[str, Any]:
    own, total, samples = Counter[str](), Counter[str](), 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n, frames = int(count), _frames(stack)
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return {"tool": "py-spy", "samples": samples, "self": own.most_common(top),
            "total": total.most_common(top)}
