"""Shared fixtures: one embedded FerryMQ per test module, on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ferrymq.testing import EmbeddedBroker


@pytest.fixture(scope="module")
def ferry() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


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
