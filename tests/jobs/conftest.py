"""Fixtures for the job-system tests in this directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.testing import EmbeddedBroker
from tests.support import jobs_app


@pytest.fixture
def jobs_url() -> Iterator[str]:
    """A broker of the test's own: every test starts with empty queues and DLQs (a start costs ~0.2 s)."""
    with EmbeddedBroker() as broker:
        yield broker.amqp_url


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The effects file of tests/support/jobs_app.py, its table created before any worker starts:
    job threads that race to create it fail with 'database is locked', which would count as a
    failed run. Set for this process too (for in-process workers)."""
    path = tmp_path / "effects.db"
    monkeypatch.setenv("FERRYMQ_JOBS_EFFECTS", str(path))
    monkeypatch.setattr(jobs_app, "_effects", None)
    jobs_app.effects()
    return path
