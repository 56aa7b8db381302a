"""Producing to an illegal topic name fails fast (INVALID_TOPIC_EXCEPTION in Metadata), not by the
message timeout — librdkafka's upstream test 0057_invalid_topic."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, Producer

pytestmark = pytest.mark.timeout(30)


def test_produce_to_an_illegal_topic_name_fails_at_once(ferry):
    errs: list = []
    p = Producer({"bootstrap.servers": ferry.kafka_bootstrap, "message.timeout.ms": 20_000})
    t0 = time.monotonic()
    p.produce("bad$#!topic", value=b"x", on_delivery=lambda err, _m: errs.append(err))
    assert p.flush(10) == 0
    assert errs and errs[0].code() == KafkaError.TOPIC_EXCEPTION
    assert time.monotonic() - t0 < 5
