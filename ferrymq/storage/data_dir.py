"""The data directory: one broker at a time (a lock file), and where each store lives in it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ferrymq.storage.commit import make_durable_directory
from ferrymq.storage.errors import StorageError

LOCK_NAME = "ferrymq.lock"


class DataDirLocked(StorageError):
    """Another broker holds this data directory: two writers would corrupt each other's logs."""


class DataDir:
    """Holds an exclusive flock on ``<path>/ferrymq.lock`` for the broker's lifetime."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        make_durable_directory(self.path)
        self._fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise DataDirLocked(f"data directory {self.path} is in use by another FerryMQ") from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing releases the flock
            self._fd = -1
