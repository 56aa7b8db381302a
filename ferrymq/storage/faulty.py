"""The faulty store: a real log on disk that can lose power, for tests and the simulator, over
either record kind — FaultyLog (queue records, over Log) and FaultyStreamLog (Kafka batches, over
StreamLog) share one fault model, because both are the one log engine on the one segment format.

Why a wrapper and not a mock: the point is to prove that the log's own recovery copes with what a
power cut leaves behind. The wrapper remembers how long each segment file was at its last fsync;
``crash(rng)`` closes the log without syncing, cuts every file back to that length (dropping every
write not yet fsynced), and may then leave part of the lost bytes behind, as a disk that wrote some
pages but not others would: a torn prefix, possibly with one bit flipped. ``crash(torn_bytes=n)``
tears deterministically instead: exactly ``n`` lost bytes of the newest damaged file survive, so a
test can tear the last write at every byte offset. Fsynced bytes are never touched; the surviving
unsynced bytes are always a prefix of what was written, so a reader can only see the right frames,
or a tail that recovery must detect (by length or CRC) and truncate.

Randomness comes from the caller (a seeded ``random.Random`` or ferrymq.clock.Rng), so a failing
sequence replays from its seed.

Model limits: file deletions (segment reclaim) are treated as durable at once, and a flipped bit is
never placed in a segment header (a corrupt header is reported as an error, by design, not recovered).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ferrymq.clock import Rng
from ferrymq.storage.log import DEFAULT_SEGMENT_BYTES, SEGMENT_SUFFIX, Log, LogRecoveryReport, SegmentedLog
from ferrymq.storage.segment import DEFAULT_INDEX_INTERVAL_BYTES, HEADER_BYTES
from ferrymq.storage.stream_log import SEGMENT_BYTES_DEFAULT, StreamLog

T = TypeVar("T")


class RandomSource(Protocol):
    def random(self) -> float: ...
    def randrange(self, start: int, stop: int = ..., /) -> int: ...
    def choice(self, seq: Sequence[T], /) -> T: ...


@dataclass(frozen=True, slots=True)
class CrashDamage:
    """What a simulated crash did, so a failing test can say it."""

    dropped_bytes: int
    kept_unsynced_bytes: int  # torn prefix left behind in one file
    flipped_at: tuple[str, int, int] | None  # (file, byte position, bit)


class _FaultyBase:
    """The power-loss model over any SegmentedLog; subclasses say which log and delegate its API."""

    def __init__(self, directory: str | os.PathLike[str], tear_probability: float,
                 flip_probability: float) -> None:
        self.directory = Path(directory)
        self.tear_probability = tear_probability
        self.flip_probability = flip_probability
        self.log: Any = self._open()
        self._synced: dict[str, int] = {}
        self._mark_all_synced()  # what exists at open is on disk already
        self.recoveries: list[LogRecoveryReport] = [self.log.recovery]
        self.damages: list[CrashDamage] = []

    def _open(self) -> SegmentedLog:
        raise NotImplementedError

    def _mark_all_synced(self) -> None:
        self._synced = {p.name: p.stat().st_size for p in self._segment_files()}

    def _segment_files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))

    def _after_front_drop(self, dropped: int) -> None:
        """The log synced the first kept segment before deleting older ones: record it."""
        files = self._segment_files()
        live = {p.name for p in files}
        self._synced = {name: n for name, n in self._synced.items() if name in live}
        if dropped and files:
            self._synced[files[0].name] = files[0].stat().st_size

    # --- the shared contract ---

    @property
    def first_offset(self) -> int:
        return int(self.log.first_offset)

    @property
    def next_offset(self) -> int:
        return int(self.log.next_offset)

    def roll(self) -> None:
        self.log.roll()

    def delete_segments_before(self, offset: int) -> int:
        reclaimed = int(self.log.delete_segments_before(offset))
        self._after_front_drop(reclaimed)
        return reclaimed

    def flush(self) -> None:
        self.log.flush()

    def fsync(self) -> int:
        """Fsync the real log, then remember every file's length as durable."""
        calls = int(self.log.fsync())
        self._mark_all_synced()
        return calls

    @property
    def dirty(self) -> bool:
        return bool(self.log.dirty)

    @property
    def segments(self) -> list[Any]:
        return list(self.log.segments)

    def close(self) -> None:
        self.log.close()

    # --- faults ---

    def crash(self, rng: RandomSource | None = None, torn_bytes: int | None = None) -> LogRecoveryReport:
        """Simulate power loss, then reopen the directory and return the log's recovery report.

        ``torn_bytes``: keep exactly that many lost bytes of the newest damaged file (no flip, no
        lost directory entry) instead of drawing the damage from ``rng``."""
        rng = rng if rng is not None else Rng(0)
        self.log.close()
        dropped = 0
        lost: list[tuple[Path, int, bytes]] = []  # (file, synced length, bytes beyond it)
        for path in self._segment_files():
            synced = self._synced.get(path.name, 0)
            data = path.read_bytes()
            if len(data) > synced:
                lost.append((path, synced, data[synced:]))
                dropped += len(data) - synced
                with open(path, "r+b") as f:
                    f.truncate(synced)
            if synced == 0 and torn_bytes is None and rng.random() < 0.5:
                path.unlink()  # a never-synced file whose directory entry never reached disk
        kept, flipped = self._tear(lost, rng, torn_bytes)
        self.damages.append(CrashDamage(dropped - kept, kept, flipped))
        return self.reopen()

    def _tear(self, lost: list[tuple[Path, int, bytes]], rng: RandomSource,
              torn_bytes: int | None) -> tuple[int, tuple[str, int, int] | None]:
        """Leave a prefix of one file's lost bytes behind; returns (bytes kept, bit flipped)."""
        if not lost:
            return 0, None
        if torn_bytes is not None:
            path, synced, tail = lost[-1]
            torn, flipped = bytearray(tail[: max(0, min(torn_bytes, len(tail)))]), None
        elif rng.random() < self.tear_probability:
            path, synced, tail = rng.choice(lost)
            torn = bytearray(tail[: rng.randrange(1, len(tail) + 1)])
            flipped = None
            flippable = [i for i in range(len(torn)) if synced + i >= HEADER_BYTES]
            if flippable and rng.random() < self.flip_probability:
                i = rng.choice(flippable)
                bit = rng.randrange(8)
                torn[i] ^= 1 << bit
                flipped = (path.name, synced + i, bit)
        else:
            return 0, None
        if not path.exists():  # its directory entry was lost: nothing of it survives
            return 0, None
        with open(path, "ab") as f:
            f.write(torn)
        return len(torn), flipped

    def reopen(self) -> LogRecoveryReport:
        """Open the directory again (after ``crash`` or a clean ``close``); what survives is on disk."""
        self.log.close()
        self.log = self._open()
        self._mark_all_synced()
        report: LogRecoveryReport = self.log.recovery
        self.recoveries.append(report)
        return report


class FaultyLog(_FaultyBase):
    """The queue Log contract plus ``crash``; after a crash it reopens (and recovers) the directory."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
        tear_probability: float = 0.5,
        flip_probability: float = 0.3,
    ) -> None:
        self._segment_bytes = segment_bytes
        self._interval = index_interval_bytes
        super().__init__(directory, tear_probability, flip_probability)

    def _open(self) -> Log:
        return Log(self.directory, self._segment_bytes, self._interval)

    def append(self, batch: Sequence[tuple[int, bytes]]) -> list[int]:
        return list(self.log.append(batch))

    def read(self, offset: int) -> tuple[int, bytes]:
        type_, payload = self.log.read(offset)
        return type_, payload

    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        return list(self.log.read_run(offset, max_bytes))


class FaultyStreamLog(_FaultyBase):
    """The StreamLog contract plus ``crash``: stream partitions under the same power-loss model."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = SEGMENT_BYTES_DEFAULT,
        segment_ms: int = -1,
        tear_probability: float = 0.5,
        flip_probability: float = 0.3,
    ) -> None:
        self._segment_bytes = segment_bytes
        self._segment_ms = segment_ms
        super().__init__(directory, tear_probability, flip_probability)

    def _open(self) -> StreamLog:
        return StreamLog(self.directory, self._segment_bytes, self._segment_ms)

    @property
    def path(self) -> Path:
        return self.directory

    @property
    def start_offset(self) -> int:
        return int(self.log.start_offset)

    def append(self, data: bytes | bytearray, batches: list[tuple[int, int, int]]) -> int:
        return int(self.log.append(data, batches))

    def read(self, offset: int, max_bytes: int) -> bytes:
        return bytes(self.log.read(offset, max_bytes))

    def tail_headers(self, max_batches: int) -> list[bytes]:
        return list(self.log.tail_headers(max_batches))

    def offset_for_time(self, ts: int) -> int | None:
        found: int | None = self.log.offset_for_time(ts)
        return found

    def advance_start(self, offset: int) -> int:
        return int(self.log.advance_start(offset))

    def apply_retention(self, now_ms: int, retention_ms: int, retention_bytes: int) -> int:
        removed = int(self.log.apply_retention(now_ms, retention_ms, retention_bytes))
        self._after_front_drop(removed)
        return removed

    def delete(self) -> None:
        self.log.delete()
