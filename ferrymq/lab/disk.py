"""The lab's small disk: a tmpfs mounted for a broker's data directory, so the ``disk-full`` fault
can fill it to the last byte and give the space back, on a real filesystem that really returns
ENOSPC — not a mock of one. A tmpfs keeps the fault off the machine's real disks and makes a fill
of tens of MiB take milliseconds.

Mounting needs root (CAP_SYS_ADMIN); ``Disk.available()`` says whether this machine allows it, so a
scenario can refuse the fault (and a test can skip) with one clear line instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from ferrymq.errors import FerryMQError

FILLER_NAME = "lab-disk-full.filler"  # at the mount's root, outside anything the broker owns
_CHUNK = 1 << 20


class DiskError(FerryMQError):
    """The lab's disk could not be set up or taken down; the message is one line for the user."""


def _run(*cmd: str) -> None:
    """Run mount/umount; any failure becomes a DiskError with the tool's own one-line reason."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DiskError(f"{' '.join(cmd)}: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise DiskError(f"{' '.join(cmd)} failed: {why[-1] if why else f'exit {done.returncode}'}")


def _why_not_root() -> str | None:
    if not sys.platform.startswith("linux"):
        return f"the lab's disk is a Linux tmpfs; this is {sys.platform}"
    if os.geteuid() != 0:
        return f"mounting the lab's tmpfs needs root (running as uid {os.geteuid()})"
    if shutil.which("mount") is None or shutil.which("umount") is None:
        return "mount/umount not found on PATH"
    return None


class Disk:
    """One mounted tmpfs; ``fill`` takes every free byte, ``free`` gives them back."""

    def __init__(self, path: Path, size_mib: int) -> None:
        self.path, self.size_mib = path, size_mib
        self.filler = path / FILLER_NAME
        self.mounted = True

    @staticmethod
    @functools.cache
    def available() -> bool:
        """Whether a tmpfs can be mounted here: root on Linux, and the mount really works (a
        container may run as root without the right to mount)."""
        if _why_not_root() is not None:
            return False
        probe = Path(tempfile.mkdtemp(prefix="ferrymq-disk-probe-"))
        try:
            Disk.mount(probe, size_mib=1).unmount()
            return True
        except DiskError:
            return False
        finally:
            with contextlib.suppress(OSError):
                probe.rmdir()

    @classmethod
    def mount(cls, path: Path, size_mib: int = 64) -> Disk:
        """Mount a tmpfs of ``size_mib`` MiB at ``path`` (created if missing; must be empty, as
        mounting over files would hide them)."""
        if size_mib < 1:
            raise DiskError(f"disk size {size_mib} MiB: expected at least 1")
        why = _why_not_root()
        if why is not None:
            raise DiskError(why)
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise DiskError(f"{path} is not empty: the lab mounts its disk only on an empty directory")
        _run("mount", "-t", "tmpfs", "-o", f"size={size_mib}M", "tmpfs", str(path))
        return cls(path, size_mib)

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.path).free

    def fill(self) -> int:
        """Write the filler until the filesystem says ENOSPC even for one byte; returns the bytes
        written. Whatever writes next on this disk (the broker) gets ENOSPC."""
        written = 0
        chunk = _CHUNK
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while chunk >= 1:
                try:
                    written += os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise DiskError(f"filling {self.path}: {exc}") from None
                    chunk //= 16  # take the last partial MiB, page and byte too
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Remove the filler: the space is back at once (tmpfs frees pages on unlink)."""
        with contextlib.suppress(FileNotFoundError):
            self.filler.unlink()

    def unmount(self) -> None:
        """Free and unmount; whoever used the disk (a broker) must have stopped first."""
        if not self.mounted:
            return
        self.free()
        _run("umount", str(self.path))
        self.mounted = False

    def __enter__(self) -> Disk:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()
