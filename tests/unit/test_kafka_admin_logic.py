"""The pure parts of the Kafka admin APIs: config operations and refusals (Kafka's codes and
messages), ConsumerProtocol subscriptions, the log start offset DeleteRecords moves (durable across
a reopen, shared by the file and memory logs), and offset tombstones in the offsets log."""

from __future__ import annotations

import struct

import pytest

from ferrymq.clock import ManualClock
from ferrymq.core.groups import Coordinator
from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.admin_configs import (
    APPEND,
    DELETE,
    SET,
    SUBTRACT,
    ConfigRefused,
    check_broker,
    incremental,
)
from ferrymq.protocols.kafka.admin_groups import offset_delete_verdict, subscribed_topics
from ferrymq.protocols.kafka.batch import validate
from ferrymq.protocols.kafka.offsets import OffsetsLog
from ferrymq.protocols.kafka.records import encode_batch
from ferrymq.storage.memory import MemoryStreamLog
from ferrymq.storage.stream_log import StreamLog


def _refusal(fn, *args) -> tuple[int, str]:
    with pytest.raises(ConfigRefused) as exc:
        fn(*args)
    return exc.value.code, exc.value.message


def test_incremental_set_and_delete_change_only_the_named_overrides():
    now = incremental({"retention.ms": "5", "segment.ms": "9"},
                      [("retention.ms", SET, "7"), ("segment.ms", DELETE, None),
                       ("retention.bytes", SET, "1")])
    assert now == {"retention.ms": "7", "retention.bytes": "1"}


def test_append_and_subtract_work_on_the_list_config_from_its_default():
    assert incremental({}, [("cleanup.policy", APPEND, "compact")]) == {"cleanup.policy": "delete,compact"}
    assert incremental({"cleanup.policy": "delete,compact"},
                       [("cleanup.policy", SUBTRACT, "delete")]) == {"cleanup.policy": "compact"}
    assert incremental({}, [("cleanup.policy", APPEND, "delete")]) == {"cleanup.policy": "delete"}


def test_append_to_a_scalar_config_is_refused_as_kafka_refuses_it():
    assert _refusal(incremental, {}, [("retention.ms", APPEND, "1")]) == (
        errors.INVALID_CONFIG, "Config value append is not allowed for config key: retention.ms")
    assert _refusal(incremental, {}, [("retention.ms", SUBTRACT, "1")])[1].startswith("Config value subtract")


def test_duplicate_keys_and_null_values_are_invalid_requests():
    assert _refusal(incremental, {}, [("retention.ms", SET, "1"), ("retention.ms", SET, "2")]) == (
        errors.INVALID_REQUEST, "Error due to duplicate config keys")
    assert _refusal(incremental, {}, [("retention.ms", SET, None)]) == (
        errors.INVALID_REQUEST, "Null value not supported for : retention.ms")


def test_broker_configs_cannot_change_at_runtime_and_the_name_must_be_this_node():
    assert _refusal(check_broker, "0", 0, ["log.retention.ms", "num.partitions"]) == (
        errors.INVALID_CONFIG,
        "Cannot update these configs dynamically: Set(log.retention.ms, num.partitions)")
    assert _refusal(check_broker, "3", 0, []) == (
        errors.INVALID_REQUEST, "Unexpected broker id, expected 0, but received 3")
    assert _refusal(check_broker, "x", 0, [])[0] == errors.INVALID_REQUEST
    check_broker("", 0, [])  # nothing asked of the cluster default: accepted


def _subscription(*topics: str) -> bytes:
    body = struct.pack(">hi", 1, len(topics))
    for t in topics:
        body += struct.pack(">h", len(t)) + t.encode()
    return body + struct.pack(">i", -1)  # user data: null


def test_subscribed_topics_are_read_from_consumer_protocol_metadata():
    assert subscribed_topics(_subscription("a", "b")) == {"a", "b"}
    assert subscribed_topics(b"\x00") == set()  # unreadable: subscribed to nothing, as in Kafka


def test_a_live_group_of_another_protocol_cannot_lose_offsets():
    assert offset_delete_verdict("Stable", "connect", True) == errors.NON_EMPTY_GROUP
    assert offset_delete_verdict("Stable", "consumer", True) == errors.NONE
    assert offset_delete_verdict("Empty", "connect", False) == errors.NONE


def _append(lg, n: int) -> None:
    records = [(b"k", b"v%d" % i, ()) for i in range(n)]
    data = bytearray(encode_batch(records, 1000, base_offset=lg.next_offset))
    info = validate(data, len(data))[0]
    lg.append(data, [(0, info.count, info.max_timestamp)])


def test_advance_start_survives_a_reopen_and_drops_whole_segments_below_it(tmp_path):
    lg = StreamLog(tmp_path / "p", segment_bytes=200)
    for _ in range(6):
        _append(lg, 3)
    assert len(lg.segments) > 2
    assert lg.advance_start(7) == 7
    assert lg.advance_start(2) == 7  # never backwards
    assert lg.segments[0].base <= 7 < lg.segments[0].next_number  # the segments below 7 went
    lg.close()
    again = StreamLog(tmp_path / "p", segment_bytes=200)
    assert (again.start_offset, again.next_offset) == (7, 18)
    assert again.advance_start(18) == 18  # to the end: every segment but a fresh active one goes
    assert [s.count for s in again.segments] == [0]
    again.close()


def test_memory_log_moves_its_start_the_same_way():
    lg = MemoryStreamLog()
    for _ in range(3):
        _append(lg, 4)
    assert lg.advance_start(5) == 5
    assert lg.read(0, 1 << 20)[:8] == struct.pack(">q", 4)  # the batch holding 5 stays readable
    assert lg.advance_start(99) == 12


def test_offset_tombstones_remove_committed_offsets_on_replay(tmp_path):
    clock = ManualClock()
    log = OffsetsLog(StreamLog(tmp_path / "o"), clock)
    log.append("g", [("t", 0, 5, ""), ("t", 1, 6, ""), ("u", 0, 7, "")])
    log.append_tombstones("g", [("t", 0), ("u", 0)])
    coordinator = Coordinator()
    assert log.load(coordinator) == 1
    assert coordinator.committed("g", "t", 1) == (6, "")
    assert coordinator.committed("g", "t", 0) is None
    log.close()


def test_forgetting_the_last_offsets_of_an_empty_group_removes_it():
    c = Coordinator()
    c.commit("g", "t", 0, 1, "")
    c.forget_offsets("g", [("t", 0)])
    assert "g" not in c.groups
