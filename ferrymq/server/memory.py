"""The memory alarm's measure: the process's resident set (RSS), against RabbitMQ's
``vm_memory_high_watermark`` (a fraction of the machine's memory, or an absolute amount).

Why RSS and not only queued bodies: what runs a machine out of memory is everything the process
holds (connection buffers, indexes, the interpreter's own heap), and that is what the kernel
counts. The reading comes from ``/proc/self/statm`` in the shell, at most once per
``MEMORY_CHECK_INTERVAL_MS``; the core never reads a file. Python rarely gives pages back, so an
alarm raised by RSS is usually cleared by raising the watermark live
(``ferrymq set-vm-memory-high-watermark``, as ``rabbitmqctl set_vm_memory_high_watermark``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ferrymq import limits
from ferrymq.core.watermark import Watermark

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes(statm: Path = Path("/proc/self/statm")) -> int | None:
    """The resident set size, or None where /proc is not there (the alarm then counts queued bodies)."""
    try:
        return int(statm.read_text().split()[1]) * _PAGE_BYTES
    except (OSError, IndexError, ValueError):
        return None


def total_memory_bytes(meminfo: Path = Path("/proc/meminfo"),
                       cgroup: Path = Path("/sys/fs/cgroup/memory.max")) -> int:
    """The machine's memory, or the cgroup's limit when lower (a container), as RabbitMQ reads it."""
    total = limits.MEMORY_TOTAL_FALLBACK_BYTES
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                total = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        capped = cgroup.read_text().strip()
        if capped.isdigit():
            total = min(total, int(capped))
    except OSError:
        pass
    return total


class MemoryMonitor:
    """Holds the watermark and the last reading; ``used_bytes`` is RSS (queued bodies where there is
    no RSS to read). The shell calls ``sample`` from its timer; the alarm is ``used > limit``."""

    def __init__(self, watermark: Watermark, total_bytes: int | None = None,
                 read_rss: Callable[[], int | None] = rss_bytes) -> None:
        self.watermark = watermark
        self.total_bytes = total_bytes if total_bytes is not None else total_memory_bytes()
        self._read_rss = read_rss
        self.rss = read_rss() or 0  # a first reading at once: /api/nodes has a value before any timer
        self.used_bytes = self.rss
        self._next_ms = 0

    @property
    def limit_bytes(self) -> int:
        return self.watermark.limit_bytes(self.total_bytes)

    def sample(self, now_ms: int, queued_bytes: int, force: bool = False) -> int:
        """Read RSS at most once per interval (a read costs a syscall and a parse)."""
        if force or now_ms >= self._next_ms:
            self._next_ms = now_ms + limits.MEMORY_CHECK_INTERVAL_MS
            self.rss = self._read_rss() or 0
        self.used_bytes = self.rss or queued_bytes
        return self.used_bytes

    def over(self) -> bool:
        return self.used_bytes > self.limit_bytes
