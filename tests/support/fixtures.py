"""pytest fixtures shared by test modules. A real RabbitMQ: import the fixture into a test module
(or a conftest) to use it:

    from tests.support.fixtures import rabbitmq  # noqa: F401

FerryMQ on a data directory the module keeps: ``data_dir, broker = kept_data_dir_broker("name")``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferrymq.testing import EmbeddedBroker
from tests.support.rabbitmq import RabbitNode, available, start_rabbitmq


@pytest.fixture(scope="session")
def rabbitmq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """One private RabbitMQ node for the whole session (a start costs several seconds)."""
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests skipped")
    node = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    try:
        yield node
    finally:
        node.stop()


def kept_data_dir_broker(prefix: str) -> tuple[Any, Any]:
    """``data_dir, broker = kept_data_dir_broker("audit")`` in a test module: a data directory and
    one broker on it, both for the module — for tests that read the files the broker writes there,
    or start a broker on it again."""
    @pytest.fixture(scope="module", name="data_dir")
    def data_dir_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp(prefix)

    @pytest.fixture(scope="module", name="broker")
    def broker_fixture(data_dir: Path) -> Iterator[EmbeddedBroker]:
        with EmbeddedBroker(data_dir=str(data_dir)) as b:
            yield b
    return data_dir_fixture, broker_fixture
