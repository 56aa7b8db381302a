"""What librdkafka's fetcher did during a consume, read from its own debug log (``debug: fetch``):
how many records and bytes each Fetch answer carried, how often the partition was parked for
``fetch.queue.backoff.ms`` because ``queued.min.messages`` were queued locally, and the queue length
at that moment. A consumer's rate with default settings is decided by these numbers, not by the
broker's speed alone (BENCHMARKS.md, "Fetch sizing (issue 17)").
"""

from __future__ import annotations

import logging
import re
import statistics
from typing import Any

# rdkafka_msgset_reader.c, one line per partition per Fetch answer
_ENQUEUE = re.compile(r"Enqueue (\d+) message\(s\) \((\d+) bytes.*?qlen (\d+)")
# rdkafka_fetcher.c rd_kafka_toppar_fetch_decide: the partition left the fetch list, queue full
_PARKED = re.compile(r"\((\d+)/(\d+) msgs, .*not fetchable: queued\.(min\.messages|max\.messages\.kbytes)")


class FetchLog(logging.Handler):
    """A logging handler for confluent-kafka's ``logger`` setting that keeps the fetcher's story."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.answers: list[tuple[int, int]] = []  # (records, bytes) per partition answer
        self.parked_at: list[int] = []  # queue length when fetching stopped
        self.cycle_records: list[int] = []  # records fetched between two stops
        self._since_stop = 0

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if m := _ENQUEUE.search(msg):
            n = int(m.group(1))
            self.answers.append((n, int(m.group(2))))
            self._since_stop += n
        elif m := _PARKED.search(msg):
            self.parked_at.append(int(m.group(1)))
            self.cycle_records.append(self._since_stop)
            self._since_stop = 0

    def config(self) -> dict[str, Any]:
        """The consumer settings that send the fetcher's log here."""
        logger = logging.getLogger(f"ferrymq.bench.fetch_log.{id(self)}")
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        logger.addHandler(self)
        return {"debug": "fetch", "logger": logger}

    def summary(self) -> str:
        if not self.answers:
            return "fetch: no answers with records seen"
        recs = [n for n, _ in self.answers]
        kib = [b / 1024 for _, b in self.answers]
        med = statistics.median
        line = (f"fetch: {len(recs)} answers with records, records/answer median {med(recs):,.0f}"
                f" (max {max(recs):,}), KiB/answer median {med(kib):,.0f} (max {max(kib):,.0f});"
                f" queue-full stops {len(self.parked_at)}")
        if self.parked_at:
            line += (f", queue length at a stop median {med(self.parked_at):,.0f},"
                     f" records fetched per stop-to-stop cycle median {med(self.cycle_records):,.0f}")
        return line
