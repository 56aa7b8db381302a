"""``ferrymq serve`` whose fsyncs fail on demand: the lab's ``fsync-error`` fault on a real process.

While the control file named by ``QUEUELAB_FSYNC_FAIL_FILE`` exists, every data fsync raises EIO,
as a failing disk's would. The broker's own code is untouched: this entry point wraps the one
function every data fsync goes through (``ferrymq.storage.commit.sync_data``, imported by name into
the storage modules that call it) before the normal command line starts, so what the report shows
is what the shipped broker does when its disk fails it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

CONTROL_ENV = "QUEUELAB_FSYNC_FAIL_FILE"  # not FERRYMQ_*: those are settings


def failing(real: Callable[[int], None], control: str) -> Callable[[int], None]:
    def sync_data(fd: int) -> None:
        if os.path.exists(control):
            raise OSError(errno.EIO, "fsync failed (QueueLab fault: fsync-error)")
        real(fd)

    return sync_data


def install(control: str) -> None:
    from ferrymq.storage import commit, segment, stream_compact, stream_store

    wrapped = failing(commit.sync_data, control)
    for module in (commit, segment, stream_compact, stream_store):
        module.sync_data = wrapped  # type: ignore[attr-defined]


def main() -> None:
    install(os.environ[CONTROL_ENV])
    from ferrymq.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()


class FsyncSwitch:
    """The lab's side: the fault player turns fsync failures on and off through the control file."""

    def __init__(self, control: str) -> None:
        self.control = control

    def fail(self) -> None:
        with open(self.control, "w"):
            pass

    def heal(self) -> None:
        if os.path.exists(self.control):
            os.unlink(self.control)
