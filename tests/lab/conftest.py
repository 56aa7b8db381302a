"""QueueLab's scenario tests. The runs against RabbitMQ (a test that takes the ``rabbitmq_url``
fixture or starts the ``rabbitmq`` target) carry the ``lab_rabbitmq`` mark: `make test` runs the
FerryMQ ones, `make lab-compat` (called by .ci/run after the compat tier) runs the RabbitMQ ones."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/lab/" not in item.nodeid.replace("\\", "/"):
            continue  # the hook sees the whole session's items; only the lab's are marked
        if "rabbitmq_url" in getattr(item, "fixturenames", ()) or "rabbitmq" in item.name:
            item.add_marker(pytest.mark.lab_rabbitmq)
