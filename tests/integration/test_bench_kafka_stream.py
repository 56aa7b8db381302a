"""The bench's stream workload over the Kafka protocol (confluent-kafka clients) against an embedded
FerryMQ: the report adds up (every record produced is consumed, nothing lost) and has latencies."""

from __future__ import annotations

import pytest

from ferrymq.bench.kafka_load import run_stream
from ferrymq.bench.report import check
from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Workload
from ferrymq.testing import EmbeddedBroker

pytest.importorskip("confluent_kafka")


@pytest.mark.timeout(120)
def test_kafka_stream_workload_report_is_consistent_and_loses_nothing():
    with EmbeddedBroker() as broker:
        target = Target("ferrymq-kafka", f"kafka://{broker.kafka_bootstrap}", "kafka", 0)
        w = Workload.from_dict({"kind": "stream", "seconds": 1, "warmup": 0.3, "size": 100,
                                "producers": 1, "consumers": 2, "queues": 2, "drain_seconds": 5})
        report = run_stream(target, w)
    t = report["totals"]
    assert check(report) == []
    assert t["published"] > 1000 and t["confirmed"] == t["published"]
    assert t["lost"] == 0 and t["consumed"] == 2 * t["published"]  # each consumer reads the whole log
    assert report["latency_ms"]["samples"] > 0 and report["latency_ms"]["p50"] > 0
