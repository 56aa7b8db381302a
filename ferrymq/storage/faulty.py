"""FaultyLog: a real Log on disk that can lose power, for tests and the simulator.

Why a wrapper and not a mock: the point is to prove that Log's own recovery copes with what a power
cut leaves behind. FaultyLog remembers how long each segment file was at its last fsync; ``crash(rng)``
closes the log without syncing, cuts every file back to that length (dropping every write not yet
fsynced), and may then leave part of the lost bytes behind, as a disk that wrote some pages but not
others would: a torn prefix, possibly with one bit flipped. Fsynced bytes are never touched; the
surviving unsynced bytes are always a prefix of what was written, so a reader can only see the right
records, or a tail that recovery must detect (by length or CRC) and truncate.

Model limits: file deletions (segment reclaim) are treated as durable at once, and a flipped bit is
never placed in a segment header (a corrupt header is reported as an error, by design, not recovered).
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ferrymq.storage.log import DEFAULT_SEGMENT_BYTES, SEGMENT_SUFFIX, Log, LogRecoveryReport
from ferrymq.storage.segment import DEFAULT_INDEX_INTERVAL_BYTES, HEADER_BYTES


@dataclass(frozen=True, slots=True)
class CrashDamage:
    """What a simulated crash did, so a failing test can say it."""

    dropped_bytes: int
    kept_unsynced_bytes: int  # torn prefix left behind in one file
    flipped_at: tuple[str, int, int] | None  # (file, byte position, bit)


class FaultyLog:
    """The Log contract plus ``crash(rng)``; after a crash it reopens (and recovers) the directory."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        index_interval_bytes: int = DEFAULT_INDEX_INTERVAL_BYTES,
        tear_probability: float = 0.5,
        flip_probability: float = 0.3,
    ) -> None:
        self.directory = Path(directory)
        self._segment_bytes = segment_bytes
        self._interval = index_interval_bytes
        self.tear_probability = tear_probability
        self.flip_probability = flip_probability
        self.log = Log(self.directory, segment_bytes, index_interval_bytes)
        self._synced: dict[str, int] = {}
        self._mark_all_synced()  # what exists at open is on disk already
        self.recoveries: list[LogRecoveryReport] = [self.log.recovery]
        self.damages: list[CrashDamage] = []

    def _mark_all_synced(self) -> None:
        self._synced = {p.name: p.stat().st_size for p in self._segment_files()}

    def _segment_files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))

    # --- the contract, delegated ---

    @property
    def first_offset(self) -> int:
        return self.log.first_offset

    @property
    def next_offset(self) -> int:
        return self.log.next_offset

    def append(self, batch: Sequence[tuple[int, bytes]]) -> list[int]:
        return self.log.append(batch)

    def read(self, offset: int) -> tuple[int, bytes]:
        return self.log.read(offset)

    def read_run(self, offset: int, max_bytes: int) -> list[tuple[int, bytes]]:
        return self.log.read_run(offset, max_bytes)

    def roll(self) -> None:
        self.log.roll()

    def delete_segments_before(self, offset: int) -> int:
        reclaimed = self.log.delete_segments_before(offset)
        files = self._segment_files()
        live = {p.name for p in files}
        self._synced = {name: n for name, n in self._synced.items() if name in live}
        if reclaimed and files:  # Log synced the first kept segment before deleting the others
            self._synced[files[0].name] = files[0].stat().st_size
        return reclaimed

    def flush(self) -> None:
        self.log.flush()

    def fsync(self) -> int:
        """Fsync the real log, then remember every file's length as durable."""
        calls = self.log.fsync()
        self._mark_all_synced()
        return calls

    @property
    def dirty(self) -> bool:
        return self.log.dirty

    def close(self) -> None:
        self.log.close()

    # --- faults ---

    def crash(self, rng: random.Random | None = None) -> LogRecoveryReport:
        """Simulate power loss, then reopen the directory with Log and return its recovery report."""
        rng = rng or random.Random(0)
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
            if synced == 0 and rng.random() < 0.5:
                path.unlink()  # a never-synced file whose directory entry never reached disk
        kept = 0
        flipped: tuple[str, int, int] | None = None
        if lost and rng.random() < self.tear_probability:
            path, synced, tail = rng.choice(lost)
            kept = rng.randrange(1, len(tail) + 1)
            torn = bytearray(tail[:kept])
            flippable = [i for i in range(len(torn)) if synced + i >= HEADER_BYTES]
            if flippable and rng.random() < self.flip_probability:
                i = rng.choice(flippable)
                bit = rng.randrange(8)
                torn[i] ^= 1 << bit
                flipped = (path.name, synced + i, bit)
            with open(path, "ab") as f:
                f.write(torn)
            dropped -= kept
        self.damages.append(CrashDamage(dropped, kept, flipped))
        return self.reopen()

    def reopen(self) -> LogRecoveryReport:
        """Open the directory again (after ``crash`` or a clean ``close``); what survives is on disk."""
        self.log.close()
        self.log = Log(self.directory, self._segment_bytes, self._interval)
        self._mark_all_synced()
        self.recoveries.append(self.log.recovery)
        return self.log.recovery
