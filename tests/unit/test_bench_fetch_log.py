"""The fetcher-log reader keeps librdkafka's own numbers: records and bytes per Fetch answer, and the
queue length each time the partition was parked because the local queue was full."""

from __future__ import annotations

import logging

from ferrymq.bench.fetch_log import FetchLog

# lines as librdkafka 2.16 writes them (rdkafka_msgset_reader.c, rdkafka_fetcher.c)
ENQ = ("[thrd:127.0.0.1:1/0]: 127.0.0.1:1/0: Enqueue {n} message(s) ({b} bytes, {n} ops) on t [0] fetch queue"
       " (qlen {q}, v2, last_offset 9081, 0 ctrl msgs, 0 aborted msgsets, uncompressed)")
PARKED = ("[thrd:127.0.0.1:1/0]: 127.0.0.1:1/0: Topic t [0] in state active at offset 0 (leader epoch 0)"
          " ({q}/100000 msgs, 9812/65536 kb queued, opv 2) is not fetchable: queued.min.messages exceeded")


def _feed(log: FetchLog, line: str) -> None:
    log.emit(logging.LogRecord("rdkafka", logging.DEBUG, "", 0, line, None, None))


def test_answers_and_queue_full_stops_are_counted_per_cycle():
    log = FetchLog()
    for n, q in [(9000, 0), (6000, 9000), (90_000, 15_000)]:
        _feed(log, ENQ.format(n=n, b=n * 100, q=q))
    _feed(log, PARKED.format(q=105_000))
    _feed(log, ENQ.format(n=4000, b=400_000, q=0))
    _feed(log, "[thrd:main]: something else entirely")
    assert log.answers == [(9000, 900_000), (6000, 600_000), (90_000, 9_000_000), (4000, 400_000)]
    assert log.parked_at == [105_000] and log.cycle_records == [105_000]
    assert "4 answers with records" in log.summary() and "queue-full stops 1" in log.summary()


def test_a_consume_without_fetcher_lines_says_so():
    assert FetchLog().summary() == "fetch: no answers with records seen"
    assert FetchLog().config()["debug"] == "fetch"
