"""pytest fixtures for tests that need a real RabbitMQ. Import the fixture into a test module
(or a conftest) to use it:

    from tests.support.fixtures import rabbitmq  # noqa: F401
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
