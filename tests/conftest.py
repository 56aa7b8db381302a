"""Shared fixtures: one embedded FerryMQ per test module, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferrymq.testing import EmbeddedBroker


@pytest.fixture(scope="module")
def ferry() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def kafka_admin(ferry: EmbeddedBroker) -> Iterator[object]:
    """kafka-python's KafkaAdminClient on the module's broker (imported here so other tests skip it)."""
    from kafka.admin import KafkaAdminClient

    client = KafkaAdminClient(bootstrap_servers=ferry.kafka_bootstrap)
    yield client
    client.close()


@pytest.fixture
def amqp_url(ferry: EmbeddedBroker) -> str:
    return ferry.amqp_url


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A private RabbitMQ node for differential tests; skipped where rabbitmq-server is absent."""
    from ferrymq.bench.rabbitmq_node import available, start_rabbitmq

    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    node = start_rabbitmq()
    try:
        yield node.amqp_url
    finally:
        node.stop()
