"""Replica management on FerryMQ's one node, driven by kafka-python's KafkaAdminClient: ElectLeaders
answers ELECTION_NOT_NEEDED, moving a replica to its own log directory and reassigning a partition to
node 0 are no-ops, another directory or broker is refused, no reassignment is ever listed (kafka-python's
test_elect_leaders, test_alter_replica_log_dirs, test_*_partition_reassignments)."""

from __future__ import annotations

import uuid

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (
    ElectionNotNeededError,
    InvalidReplicationAssignmentError,
    LogDirNotFoundError,
    NoError,
    NoReassignmentInProgressError,
    ReplicaNotAvailableError,
    UnknownTopicOrPartitionError,
)
from kafka.structs import TopicPartitionReplica

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def admin(kafka_admin: KafkaAdminClient) -> KafkaAdminClient:
    return kafka_admin


@pytest.fixture
def topic(admin: KafkaAdminClient) -> str:
    name = f"rep-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
    return name


def test_elect_leaders_needs_no_election_on_one_node(admin, topic):
    response = admin.elect_leaders(0, {topic: [0, 1, 7]}, raise_errors=False)
    [(name, parts)] = [(r[0], r[1]) for r in response.replica_election_results]
    codes = {p[0]: p[1] for p in parts}
    assert name == topic
    assert codes == {0: ElectionNotNeededError.errno, 1: ElectionNotNeededError.errno,
                     7: UnknownTopicOrPartitionError.errno}


def test_a_replica_moves_only_to_the_log_dir_it_is_in(admin, topic):
    [broker] = admin.describe_log_dirs()
    log_dir, node = broker["log_dirs"][0]["log_dir"], broker["broker"]
    here, missing = TopicPartitionReplica(topic, 0, node), TopicPartitionReplica(topic, 9, node)
    assert admin.alter_replica_log_dirs({here: log_dir, missing: log_dir}) == {
        here: NoError, missing: ReplicaNotAvailableError}
    assert admin.alter_replica_log_dirs({here: log_dir + "-elsewhere"}) == {here: LogDirNotFoundError}


def test_reassigning_to_node_zero_is_a_no_op_and_nothing_is_listed(admin, topic):
    tp0, tp1, gone = TopicPartition(topic, 0), TopicPartition(topic, 1), TopicPartition(topic, 5)
    node = admin.describe_cluster()["brokers"][0]["broker_id"]
    result = admin.alter_partition_reassignments({tp0: [node], tp1: [node, 42], gone: [node]})
    assert result == {tp0: None, tp1: InvalidReplicationAssignmentError, gone: UnknownTopicOrPartitionError}
    assert admin.alter_partition_reassignments({tp0: None}) == {tp0: NoReassignmentInProgressError}
    assert admin.list_partition_reassignments() == {}
    assert admin.list_partition_reassignments([tp0]) == {}
