"""The API versions FerryMQ advertises, and which of them are flexible (KIP-482).

Why these ranges: they are Kafka 2.4's maxima (clipped below at what kio models, which is Kafka 4's
floor), so kafka-python infers broker 2.4 from them and every client negotiates a version we speak.
Produce 3-8 and Fetch 4-11 are the non-flexible versions the hand-written codecs implement; both
still serve RecordBatch v2 and zstd (Produce 7+, Fetch 10+).
"""

from __future__ import annotations

from functools import cache

from kio.index import load_request_schema

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR = 8, 9, 10
JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 11, 12, 13, 14
DESCRIBE_GROUPS, LIST_GROUPS, SASL_HANDSHAKE, API_VERSIONS = 15, 16, 17, 18
CREATE_TOPICS, DELETE_TOPICS, INIT_PRODUCER_ID = 19, 20, 22
ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
DESCRIBE_CONFIGS, SASL_AUTHENTICATE, CREATE_PARTITIONS = 32, 36, 37
# admin APIs tools call (server/kafka/admin_*.py)
DELETE_RECORDS, DESCRIBE_ACLS, CREATE_ACLS, DELETE_ACLS, ALTER_CONFIGS = 21, 29, 30, 31, 33
DESCRIBE_LOG_DIRS, DELETE_GROUPS, INCREMENTAL_ALTER_CONFIGS, OFFSET_DELETE = 35, 42, 44, 47
DESCRIBE_CLUSTER = 60
DESCRIBE_USER_SCRAM_CREDENTIALS, ALTER_USER_SCRAM_CREDENTIALS = 50, 51  # server/kafka/scram_admin.py
# replica management on one node (server/kafka/admin_replicas.py)
ALTER_REPLICA_LOG_DIRS, ELECT_LEADERS = 34, 43
ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS = 45, 46

SUPPORTED: dict[int, tuple[int, int]] = {
    PRODUCE: (3, 8),
    FETCH: (4, 11),
    LIST_OFFSETS: (1, 5),
    METADATA: (0, 8),
    OFFSET_COMMIT: (2, 8),
    OFFSET_FETCH: (1, 6),
    FIND_COORDINATOR: (0, 3),
    JOIN_GROUP: (0, 6),
    HEARTBEAT: (0, 4),
    LEAVE_GROUP: (0, 4),
    SYNC_GROUP: (0, 4),
    DESCRIBE_GROUPS: (0, 5),
    LIST_GROUPS: (0, 3),
    SASL_HANDSHAKE: (0, 1),
    API_VERSIONS: (0, 3),
    CREATE_TOPICS: (2, 5),
    DELETE_TOPICS: (1, 4),
    INIT_PRODUCER_ID: (0, 2),
    ADD_PARTITIONS_TO_TXN: (0, 1),
    ADD_OFFSETS_TO_TXN: (0, 1),
    END_TXN: (0, 1),
    TXN_OFFSET_COMMIT: (0, 2),
    DESCRIBE_CONFIGS: (1, 2),
    SASL_AUTHENTICATE: (0, 1),
    CREATE_PARTITIONS: (0, 1),
    # The admin APIs: kio's ranges, except where kafka-python infers a newer broker from a version
    # (DescribeAcls 2+ reads as Kafka 2.5+, DescribeLogDirs 5 as 4.3): those stop below it.
    DELETE_RECORDS: (0, 2),
    DESCRIBE_ACLS: (1, 1),
    CREATE_ACLS: (1, 1),
    DELETE_ACLS: (1, 1),
    ALTER_CONFIGS: (0, 2),
    DESCRIBE_LOG_DIRS: (1, 4),
    DELETE_GROUPS: (0, 2),
    INCREMENTAL_ALTER_CONFIGS: (0, 1),
    OFFSET_DELETE: (0, 0),
    DESCRIBE_CLUSTER: (0, 1),
    DESCRIBE_USER_SCRAM_CREDENTIALS: (0, 0),
    ALTER_USER_SCRAM_CREDENTIALS: (0, 0),
    # replica management on one node: kio's ranges (none of them moves kafka-python's inference)
    ALTER_REPLICA_LOG_DIRS: (1, 2),
    ELECT_LEADERS: (0, 2),
    ALTER_PARTITION_REASSIGNMENTS: (0, 0),
    LIST_PARTITION_REASSIGNMENTS: (0, 0),
}
HAND_WRITTEN = frozenset({PRODUCE, FETCH})
FIRST_FLEXIBLE = {PRODUCE: 9, FETCH: 12}


def supported(api_key: int, version: int) -> bool:
    rng = SUPPORTED.get(api_key)
    return rng is not None and rng[0] <= version <= rng[1]


@cache
def flexible(api_key: int, version: int) -> bool:
    """Whether this request carries header v2 and compact fields. Unknown APIs read as classic."""
    if api_key in FIRST_FLEXIBLE:
        return version >= FIRST_FLEXIBLE[api_key]
    if api_key == API_VERSIONS:
        return version >= 3
    if not supported(api_key, version):
        return False
    return bool(load_request_schema(api_key, version).__flexible__)
