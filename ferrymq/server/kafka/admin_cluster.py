"""DescribeCluster (60) and DescribeLogDirs (35): the one-node cluster and its one log directory.

The log directory is where the partition logs live (the stream store's root in the data
directory); each partition's size is the sum of its segment files' sizes on disk, read when asked.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.protocols.kafka import errors, versions
from ferrymq.server.kafka.apis import CLUSTER_ID, CLUSTER_OPERATIONS, NOT_ASKED
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import NODE_ID, Handler, broker_info, decoded, reply

ENDPOINT_BROKER, ENDPOINT_CONTROLLER = 1, 2


class ClusterApis:
    """``topics``: the partitions described; ``log_dir``: where their logs are."""

    def __init__(self, topics: TopicRegistry, log_dir: Path) -> None:
        self.topics = topics
        self.log_dir = log_dir

    def handlers(self) -> dict[int, Handler]:
        return {versions.DESCRIBE_CLUSTER: decoded(self.describe_cluster),
                versions.DESCRIBE_LOG_DIRS: decoded(self.describe_log_dirs)}

    def describe_cluster(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        endpoint = int(getattr(req, "endpoint_type", ENDPOINT_BROKER))
        if endpoint != ENDPOINT_BROKER:
            reply(slot, _wrong_endpoint(endpoint, slot.version))
            return
        b = broker_info(conn)
        ops = CLUSTER_OPERATIONS if req.include_cluster_authorized_operations else NOT_ASKED
        reply(slot, {"throttle_time": 0, "error_code": 0, "error_message": None, "endpoint_type": endpoint,
                     "cluster_id": CLUSTER_ID, "controller_id": NODE_ID, "cluster_authorized_operations": ops,
                     "brokers": [{"broker_id": NODE_ID, "host": b["host"], "port": b["port"], "rack": None,
                                  "is_fenced": False}]})

    def describe_log_dirs(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        wanted: list[tuple[str, list[int] | None]]
        if req.topics is None:
            wanted = [(name, None) for name in self.topics.all_names()]
        else:
            wanted = [(t.topic, list(t.partitions)) for t in req.topics]
        out = []
        for name, parts in wanted:
            topic = self.topics.get(name)
            if topic is not None:
                out.append({"name": name, "partitions": _partition_sizes(topic, parts)})
        usage = shutil.disk_usage(self.log_dir)
        reply(slot, {"throttle_time": 0, "error_code": 0, "results": [
            {"error_code": 0, "log_dir": str(self.log_dir), "topics": out,
             "total_bytes": usage.total, "usable_bytes": usage.free}]})


def _wrong_endpoint(endpoint: int, version: int) -> dict[str, Any]:
    """Kafka's answer to a DescribeCluster meant for a controller (or an unknown endpoint type)."""
    known = endpoint == ENDPOINT_CONTROLLER
    code = errors.MISMATCHED_ENDPOINT_TYPE if known else errors.UNSUPPORTED_ENDPOINT_TYPE
    msg = ("The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
           if known else f"Unsupported endpoint type {endpoint}")
    return {"throttle_time": 0, "error_code": errors.INVALID_REQUEST if version == 0 else code,
            "error_message": msg, "endpoint_type": endpoint, "cluster_id": "", "controller_id": -1,
            "brokers": [], "cluster_authorized_operations": NOT_ASKED}


def _partition_sizes(topic: Topic, parts: list[int] | None) -> list[dict[str, Any]]:
    indexes = range(topic.spec.partitions) if parts is None else parts
    return [{"partition_index": p, "partition_size": _size_on_disk(topic.logs[p]), "offset_lag": 0,
             "is_future_key": False} for p in indexes if 0 <= p < topic.spec.partitions]


def _size_on_disk(lg: Any) -> int:
    """The bytes of the partition's segment files (the in-memory size where it has none)."""
    segments = getattr(lg, "segments", None)
    if segments is None:
        return int(lg.size_bytes)
    total = 0
    for seg in segments:
        try:
            total += os.path.getsize(seg.path)
        except OSError:  # deleted by retention since the list was taken
            pass
    return total
