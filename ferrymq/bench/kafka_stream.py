"""The hook for the ``stream`` workload over the Kafka protocol (``--target kafka://host:port``).

Not built yet: it lands with the Kafka listener work. The contract it must keep, so reports,
HTML and consistency checks need no change: ``run_stream(target, workload)`` returns the same
report shape as ``run.run_workload`` (build it with ``report.build_report``), where producers
are Produce-ing processes (pre-encoded RecordBatch v2 with the send time in each record value,
``acks`` from ``workload.confirm``), consumers Fetch by offset from the earliest offset (each
consumer reads every partition's whole log: ``Topology.copies(stream=True)``), ``queues`` is the
partition count, and depth is the high watermark minus the consumers' committed offsets.
Until then, the ``stream`` workload runs over AMQP as a ``x-queue-type: stream`` queue.
"""

from __future__ import annotations

from typing import Any

from ferrymq.bench.targets import Target
from ferrymq.bench.workloads import Workload


def run_stream(target: Target, workload: Workload) -> dict[str, Any]:
    raise NotImplementedError(
        f"the Kafka-protocol stream workload is not built yet ({target.url}); run the stream workload "
        "over AMQP (a x-queue-type: stream queue) with an amqp:// target meanwhile")
