"""Replica management on a one-node cluster: ElectLeaders (43), AlterReplicaLogDirs (34),
AlterPartitionReassignments (45) and ListPartitionReassignments (46).

FerryMQ is one broker with one log directory, so every partition's one replica is on node 0, is its
preferred leader and lives in that directory. Each API then has Kafka's answer for a cluster that is
already where it is asked to be: no election is needed (ELECTION_NOT_NEEDED), moving a replica to its
own directory or reassigning a partition to ``[0]`` is a no-op (NONE), no reassignment is ever in
progress; anything naming another broker or directory is refused as Kafka refuses it. Changing a
cluster's replicas is a cluster operation: Alter* and ElectLeaders need the ``administrator`` tag,
as the ACL APIs do (CLUSTER_AUTHORIZATION_FAILED otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import errors, versions
from ferrymq.server.kafka.authz import KafkaAuthorizer
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import NODE_ID, Handler, decoded, reply

NOT_NEEDED = "Leader election not needed for topic partition"
UNKNOWN = "The topic or partition does not exist"


class ReplicaApis:
    """``topics``: the partitions; ``log_dir``: the one directory their logs are in."""

    def __init__(self, topics: TopicRegistry, log_dir: Path, authz: KafkaAuthorizer) -> None:
        self.topics = topics
        self.log_dir = log_dir
        self.authz = authz

    def handlers(self) -> dict[int, Handler]:
        return {versions.ELECT_LEADERS: decoded(self.elect_leaders),
                versions.ALTER_REPLICA_LOG_DIRS: decoded(self.alter_replica_log_dirs),
                versions.ALTER_PARTITION_REASSIGNMENTS: decoded(self.alter_reassignments),
                versions.LIST_PARTITION_REASSIGNMENTS: decoded(self.list_reassignments)}

    def _exists(self, name: str, partition: int) -> bool:
        topic = self.topics.get(name)
        return topic is not None and 0 <= partition < topic.spec.partitions

    def elect_leaders(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        """Every existing partition is led by its preferred replica. Asked for all partitions
        (null), Kafka leaves out those needing no election: the answer is empty."""
        if not self.authz.administrator(conn):
            reply(slot, {"throttle_time": 0, "error_code": errors.CLUSTER_AUTHORIZATION_FAILED,
                         "replica_election_results": []})
            return
        results = [{"topic": t.topic, "partition_result": [self._election(t.topic, p) for p in t.partitions]}
                   for t in req.topic_partitions or []]
        reply(slot, {"throttle_time": 0, "error_code": errors.NONE, "replica_election_results": results})

    def _election(self, name: str, partition: int) -> dict[str, Any]:
        code, msg = ((errors.ELECTION_NOT_NEEDED, NOT_NEEDED) if self._exists(name, partition)
                     else (errors.UNKNOWN_TOPIC_OR_PARTITION, UNKNOWN))
        return {"partition_id": partition, "error_code": code, "error_message": msg}

    def alter_replica_log_dirs(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        """A replica may only "move" to the directory it is in; a partition this broker does not
        have answers REPLICA_NOT_AVAILABLE, as Kafka's does."""
        admin = self.authz.administrator(conn)
        results = []
        for d in req.dirs:
            here = _same_dir(d.path, self.log_dir)
            for t in d.topics:
                codes = [errors.CLUSTER_AUTHORIZATION_FAILED if not admin else
                         errors.LOG_DIR_NOT_FOUND if not here else
                         errors.NONE if self._exists(t.name, p) else errors.REPLICA_NOT_AVAILABLE
                         for p in t.partitions]
                parts = [{"partition_index": p, "error_code": c}
                         for p, c in zip(t.partitions, codes, strict=True)]
                results.append({"topic_name": t.name, "partitions": parts})
        reply(slot, {"throttle_time": 0, "results": results})

    def alter_reassignments(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not self.authz.administrator(conn):
            reply(slot, {"throttle_time": 0, "error_code": errors.CLUSTER_AUTHORIZATION_FAILED,
                         "error_message": "Cluster authorization failed", "responses": []})
            return
        responses = [{"name": t.name, "partitions": [
            {"partition_index": p.partition_index, **self._reassignment(t.name, p)}
            for p in t.partitions]} for t in req.topics]
        reply(slot, {"throttle_time": 0, "error_code": errors.NONE, "error_message": None,
                     "responses": responses})

    def _reassignment(self, name: str, asked: Any) -> dict[str, Any]:
        """Kafka's per-partition answer when the only broker is node 0."""
        partition, replicas = asked.partition_index, asked.replicas
        if not self._exists(name, partition):
            return {"error_code": errors.UNKNOWN_TOPIC_OR_PARTITION, "error_message": UNKNOWN}
        if replicas is None:  # a cancellation
            return {"error_code": errors.NO_REASSIGNMENT_IN_PROGRESS,
                    "error_message": f"No ongoing reassignment for partition {name}-{partition}"}
        others = [int(r) for r in replicas if int(r) != NODE_ID]
        if not replicas:
            msg = "The manual partition assignment includes an empty replica list."
        elif others:
            msg = (f"The manual partition assignment includes broker {others[0]}, "
                   "but no such broker is registered.")
        elif len(replicas) > 1:
            msg = "The manual partition assignment includes the partition more than once."
        else:
            return {"error_code": errors.NONE, "error_message": None}
        return {"error_code": errors.INVALID_REPLICA_ASSIGNMENT, "error_message": msg}

    def list_reassignments(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        """No reassignment is ever in progress: the list is empty, whatever was asked."""
        reply(slot, {"throttle_time": 0, "error_code": errors.NONE, "error_message": None, "topics": []})


def _same_dir(path: str, log_dir: Path) -> bool:
    try:
        return Path(path).resolve() == log_dir.resolve()
    except (OSError, ValueError):
        return False
