"""Worker processes started as a user starts them: the library's own command, in a session of its
own (so the whole tree — Dramatiq's and Celery's forked children too — is stopped by its group id),
configured by environment variables the job modules read."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ferrymq.bench.jobs import probe
from ferrymq.bench.procstat import proc_cpu_seconds

STOP_GRACE_S = 10.0


@dataclass
class Workers:
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def cpu_seconds(self) -> float:
        """CPU used so far by every live process of the group (the library's whole worker tree)."""
        total = 0.0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _pgid(entry) == self.proc.pid:
                total += proc_cpu_seconds(int(entry.name))
        return total

    def stop(self) -> None:
        """SIGTERM to the group (each library's graceful stop), SIGKILL after the grace."""
        _signal(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        _signal(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(5)


def _pgid(entry: Path) -> int:
    try:
        stat = (entry / "stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rindex(")") + 2:].split()[2])


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def spawn(argv: list[str], url: str, queue: str, out: Path,
          extra_env: dict[str, str] | None = None) -> Workers:
    """Start the workers; their probe files land in ``out``, their output in ``out/worker.log``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(extra_env or {}), probe.URL_ENV: url, probe.QUEUE_ENV: queue,
           probe.DIR_ENV: str(out),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[3]),
                                                         os.environ.get("PYTHONPATH")]))}
    log = out / "worker.log"
    with log.open("ab") as f:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=out)
    return Workers(proc, log)
