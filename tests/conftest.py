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
