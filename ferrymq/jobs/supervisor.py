"""``--processes N``: N worker processes under one parent that restarts them.

Each child is ``ferrymq worker`` itself with ``--processes 1``: a fresh interpreter with its own
GIL and connection (fork after threads and sockets exist is unsafe). A child that exits is
started again (a recycled one exits 0 after ``--max-tasks``; a crashed one after a short pause,
so a job module that crashes on import does not spin); SIGTERM/SIGINT go to every child, which
drains, and the parent waits for them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from types import FrameType

RESTART_PAUSE_S = 1.0


class Supervisor:
    def __init__(self, child_argv: list[str], processes: int) -> None:
        self.child_argv = child_argv
        self.processes = processes
        self.children: list[subprocess.Popen[bytes]] = []
        self._stopping = threading.Event()

    def _spawn(self, index: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "ferrymq.jobs.cli", *self.child_argv, "--child-index", str(index)]
        return subprocess.Popen(argv)

    def _forward(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping.set()
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._forward)
        signal.signal(signal.SIGINT, self._forward)
        self.children = [self._spawn(i) for i in range(self.processes)]
        while not self._stopping.is_set():
            for index, child in enumerate(self.children):
                code = child.poll()
                if code is not None and not self._stopping.is_set():
                    if code != 0:
                        self._stopping.wait(RESTART_PAUSE_S)
                    self.children[index] = self._spawn(index)
            self._stopping.wait(0.2)
        return max((child.wait() for child in self.children), default=0) and 1
