"""Which stream queues are partitions of which super stream (ferrymq.core.super_stream): RabbitMQ's
naming (S-0 .. S-(N-1)), the x-super-stream exchange argument, and x-stream-partition-order."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ferrymq.core.super_stream import is_super_stream, partition_binding, partition_of, split_partition

SUPER = SimpleNamespace(arguments={"x-super-stream": True})
PLAIN = SimpleNamespace(arguments={})


@pytest.mark.parametrize(("name", "expected"), [
    ("orders-0", ("orders", 0)), ("orders-12", ("orders", 12)), ("a-b-3", ("a-b", 3)),
    ("orders", None), ("orders-", None), ("-1", None), ("orders-01", None), ("orders-x", None),
    ("orders-\u0663", None),  # a non-ASCII digit is not a partition number
])
def test_a_partition_queue_name_says_its_super_stream_and_partition(name, expected):
    assert split_partition(name) == expected


def test_only_an_exchange_marked_x_super_stream_makes_its_queues_partitions():
    assert partition_of({"orders": SUPER}, "orders-2", {}) == ("orders", 2)
    assert partition_of({"orders": PLAIN}, "orders-2", {}) is None
    assert partition_of({}, "orders-2", {}) is None
    assert partition_of({"orders": SUPER}, "orders-amer", {}) is None


def test_a_queue_argument_x_stream_partition_order_names_the_partition():
    assert partition_of({"invoices": SUPER}, "invoices-amer", {"x-stream-partition-order": 1}) == (
        "invoices", 1)


def test_the_marker_is_rabbitmqs_bool_or_its_text():
    assert is_super_stream(SimpleNamespace(arguments={"x-super-stream": "true"}))
    assert not is_super_stream(SimpleNamespace(arguments={"x-super-stream": False}))
    assert not is_super_stream(None)


def test_partitions_are_bound_as_rabbitmq_binds_them_by_default():
    assert partition_binding(3) == ("3", {"x-stream-partition-order": 3})
