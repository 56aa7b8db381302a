"""What faults do to a process: kill -9, SIGSTOP, SIGCONT. One class for every process the lab
controls (a consumer worker, a RabbitMQ node's VM); the subject says which pid it means now."""

from __future__ import annotations

import contextlib
import os
import signal


class Signalled:
    """A process that faults can kill and stop; ``signalled_pid`` is 0 when it is not running."""

    def signalled_pid(self) -> int:
        raise NotImplementedError

    def _signal(self, sig: int) -> None:
        pid = self.signalled_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def kill9(self) -> None:
        self._signal(signal.SIGKILL)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
