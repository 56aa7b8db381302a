"""The soak engine: mutate a target's seeds for N inputs or S seconds, whichever ends first, and keep
every distinct finding's first input as a regression case.

A finding is told apart from another by its exception type and the innermost FerryMQ line it left
from, so one bug hit a million times is one file, not a million.
"""

from __future__ import annotations

import hashlib
import mmap
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ferrymq.clock import Clock, Rng, SystemClock
from ferrymq.fuzz.mutate import INPUT_MAX_BYTES, mutate
from ferrymq.fuzz.target import Target

_CHECK_EVERY = 512  # inputs between looks at the clock
CURRENT_FILE = ".current"  # the input being tried, length-prefixed: what a crashed process leaves


@dataclass(slots=True)
class Report:
    target: str
    seed: int
    inputs: int = 0
    elapsed_ms: int = 0
    findings: dict[str, Path | bytes] = field(default_factory=dict)  # signature -> saved file or input

    @property
    def rate(self) -> float:
        return self.inputs * 1000 / max(self.elapsed_ms, 1)

    def line(self) -> str:
        return (f"{self.target}: {self.inputs:,} inputs in {self.elapsed_ms / 1000:.1f} s "
                f"({self.rate:,.0f}/s), {len(self.findings)} findings, seed {self.seed}")


def signature(exc: BaseException) -> str:
    """Exception type and the innermost ferrymq frame it passed through."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/ferrymq/" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__}@{where}"


def save(directory: Path, sig: str, data: bytes) -> Path:
    """The input under ``directory``, named by its signature and content (stable across runs)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = sig.replace("@", "-").replace(":", "-").replace(".", "_")
    path = directory / f"{name}-{hashlib.sha1(data).hexdigest()[:10]}.bin"
    path.write_bytes(data)
    return path


def run(target: Target, inputs: int, seconds: float, seed: int | None = None,
        save_dir: Path | None = None, clock: Clock | None = None) -> Report:
    """Soak ``target``; each distinct finding is printed once and saved under ``save_dir/target``."""
    rng, clock = Rng(seed), clock or SystemClock()
    seeds = list(target.seeds())
    report = Report(target.name, rng.seed_value)
    start = clock.monotonic_ms()
    deadline = start + int(seconds * 1000)
    one_input = target.one_input
    current = _current(save_dir / target.name if save_dir else None)
    while report.inputs < inputs:
        for _ in range(min(_CHECK_EVERY, inputs - report.inputs)):
            data = mutate(rng, seeds)
            current[:4], current[4:4 + len(data)] = len(data).to_bytes(4, "big"), data
            try:
                one_input(data)
            except Exception as exc:  # the point of fuzzing: whatever escapes is recorded, not fatal
                _record(report, exc, data, save_dir)
            report.inputs += 1
        if clock.monotonic_ms() >= deadline:
            break
    report.elapsed_ms = clock.monotonic_ms() - start
    if save_dir is not None and isinstance(current, mmap.mmap):
        current.close()
        (save_dir / target.name / CURRENT_FILE).unlink()
    return report


def _current(directory: Path | None) -> mmap.mmap | bytearray:
    """Where each input is copied before it runs (a memory map: a crash that kills the process,
    such as a native library's abort, leaves the input behind for ``crashed_input``)."""
    if directory is None:
        return bytearray(4 + INPUT_MAX_BYTES)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / CURRENT_FILE, "wb+") as f:
        f.truncate(4 + INPUT_MAX_BYTES)
        return mmap.mmap(f.fileno(), 4 + INPUT_MAX_BYTES)


def crashed_input(directory: Path) -> bytes | None:
    """The input a killed run was trying, if one left its file."""
    path = directory / CURRENT_FILE
    if not path.exists():
        return None
    raw = path.read_bytes()
    path.unlink()
    return raw[4:4 + int.from_bytes(raw[:4], "big")]


def _record(report: Report, exc: Exception, data: bytes, save_dir: Path | None) -> None:
    sig = signature(exc)
    if sig in report.findings:
        return
    report.findings[sig] = save(save_dir / report.target, sig, data) if save_dir else data
    print(f"FINDING {report.target} {sig}: {exc!r}"[:400], flush=True)
