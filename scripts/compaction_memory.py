"""What one compaction pass costs in memory and time on a partition with many distinct keys, with the
offset map unbounded (one pass) and bounded by log.cleaner.dedupe.buffer.size (several passes).

    .venv/bin/python scripts/compaction_memory.py --keys 1000000 --records 2000000 --buffer-mib 64 16

Peak memory is tracemalloc's peak over the pass (the map and the batches in flight); time is measured
in a separate run without tracemalloc.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.server.cleaner import RECORD_CODEC
from ferrymq.storage.stream_compact import apply, map_keys_for, needs_compaction, plan
from ferrymq.storage.stream_log import StreamLog

BATCH = 1_000


def build(path: Path, keys: int, records: int, seed: int) -> None:
    rng = random.Random(seed)
    log = StreamLog(path, segment_bytes=64 << 20)
    value = b"v" * 100
    for start in range(0, records, BATCH):
        data = bytearray(encode_batch([(b"key-%d" % rng.randrange(keys), value, [])
                                       for _ in range(min(BATCH, records - start))], 1_000))
        infos = validate(data, 1 << 24)
        assign_offsets(data, infos, log.next_offset)
        log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos])
    log.close()


def passes(src: Path, keys_max: int | None, traced: bool) -> tuple[int, float, int]:
    """(passes, seconds, peak bytes) to compact a fresh copy of the log at ``src`` completely."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "p"
        os.system(f"cp -r {src} {work}")
        log = StreamLog(work, segment_bytes=64 << 20)
        log.roll()
        n, t0 = 0, time.perf_counter()
        if traced:
            tracemalloc.start()
        while needs_compaction(log, 2_000):
            apply(plan(log, RECORD_CODEC, 2_000, 0, keys_max))
            n += 1
        peak = tracemalloc.get_traced_memory()[1] if traced else 0
        tracemalloc.stop()
        seconds = time.perf_counter() - t0
        log.close()
    return n, seconds, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--buffer-mib", type=int, nargs="*", default=[64, 16])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        build(src, args.keys, args.records, seed=1)
        print(f"{args.records:,} records, {args.keys:,} possible keys, load {os.getloadavg()[0]:.2f}")
        print("| offset map | keys a pass | passes | seconds | peak MiB |")
        print("|---|---|---|---|---|")
        for label, keys_max in [("unbounded", None)] + [(f"{m} MiB", map_keys_for(m << 20))
                                                         for m in args.buffer_mib]:
            n, seconds, _ = passes(src, keys_max, traced=False)
            _, _, peak = passes(src, keys_max, traced=True)
            shown = f"{keys_max:,}" if keys_max else "all"
            print(f"| {label} | {shown} | {n} | {seconds:.1f} | {peak / 2**20:.1f} |")


if __name__ == "__main__":
    main()
