"""Where streams live on disk: ``<root>/<topic>/topic.json`` (partition count and configs) and
``<root>/<topic>/<partition>/`` (that partition's StreamLog).

Why a JSON file per topic: topics change rarely and are few; a file written whole (temp file,
fsync, rename, directory fsync) is either the old or the new version after a crash, and a topic
directory without one is a creation that never finished, removed at start-up. A partition directory
is created by its StreamLog, which syncs the topic directory in its first fsync, so no acknowledged
batch can sit in a directory a power cut could lose.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ferrymq.core.clock import Clock
from ferrymq.storage.commit import make_durable_directory, replace_file, sync_directory
from ferrymq.storage.stream_log import StreamLog

META = "topic.json"


class StreamStore:
    def __init__(self, root: str | os.PathLike[str], clock: Clock | None = None) -> None:
        self.root = Path(root)
        self.clock = clock
        make_durable_directory(self.root)

    def load(self) -> list[dict[str, Any]]:
        """Every stored topic's metadata (``name``, ``partitions``, ``configs``, ``internal``)."""
        topics = []
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            meta = d / META
            if not meta.exists():
                shutil.rmtree(d, ignore_errors=True)
                continue
            topics.append(json.loads(meta.read_text()))
        return topics

    def save(self, name: str, partitions: int, configs: dict[str, str], internal: bool = False) -> None:
        d = self.root / name
        new = not d.exists()
        d.mkdir(exist_ok=True)
        data = json.dumps({"name": name, "partitions": partitions, "configs": configs, "internal": internal})
        replace_file(d / META, data.encode())
        if new:
            sync_directory(self.root)

    def open_partition(self, name: str, partition: int, segment_bytes: int,
                       segment_ms: int = -1) -> StreamLog:
        """The partition's log; its directory entry is synced by the log's first fsync, before any
        batch in it is acknowledged (the topic directory's own fsync in ``save`` came earlier)."""
        return StreamLog(self.root / name / str(partition), segment_bytes, segment_ms, self.clock)

    def delete(self, name: str) -> None:
        d = self.root / name
        (d / META).unlink(missing_ok=True)  # first: a half-deleted topic is not loaded again
        if d.exists():
            sync_directory(d)
        shutil.rmtree(d, ignore_errors=True)
