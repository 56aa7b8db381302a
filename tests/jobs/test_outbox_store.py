"""The transactional outbox on real databases (a SQLite file, a private PostgreSQL server): what is
published, and how often. The relay publishes into a recorder here; the end-to-end test runs it
against a real broker and worker."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ferrymq.clock import ManualClock
from ferrymq.jobs.db import Database
from ferrymq.jobs.errors import SerializationError
from ferrymq.jobs.outbox import Outbox, OutboxRelay
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401


class Recorder:
    """Stands in for ``App.enqueue``: records each confirmed publish; can fail or be slow."""

    def __init__(self, fail_at: int | None = None, pause_s: float = 0.0) -> None:
        self.published: list[Any] = []
        self.fail_at = fail_at
        self.pause_s = pause_s
        self.jobs: dict[str, Any] = {}
        self.clock = ManualClock()
        self._lock = threading.Lock()

    def enqueue_many(self, messages: list[Any]) -> list[Any]:
        for message in messages:
            if self.fail_at is not None and len(self.published) == self.fail_at:
                raise ConnectionError("broker went away")
            if self.pause_s:
                threading.Event().wait(self.pause_s)
            with self._lock:
                self.published.append(message)
        return messages


@pytest.fixture
def db(any_db_url: str) -> Database:  # noqa: F811
    return Database(any_db_url, durable=False)


def test_a_committed_send_is_published_once_with_its_arguments_and_options(db: Database) -> None:
    app, outbox = Recorder(), Outbox(db, clock=ManualClock())
    with db.transaction() as tx:
        message_id = outbox.send(tx, "charge", ["o-1"], {"cents": 250}, key="o-1", priority=5,
                                 queue="critical", delay="10s", tenant="acme")
    relay = OutboxRelay(app, db)
    assert relay.pending() == 1
    assert relay.run_once() == 1 and relay.run_once() == 0
    [message] = app.published
    assert (message.id, message.job, message.queue, message.args, message.kwargs) == \
        (message_id, "charge", "critical", ["o-1"], {"cents": 250})
    assert (message.key, message.priority, message.tenant) == ("o-1", 5, "acme")
    assert message.eta_ms == outbox.clock.now_ms() + 10_000 and message.attempt == 0
    assert relay.pending() == 0


def test_a_rolled_back_send_is_never_published(db: Database) -> None:
    app, outbox = Recorder(), Outbox(db)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        outbox.send(tx, "charge", ["o-1"])
        raise RuntimeError("the order failed")
    assert OutboxRelay(app, db).run_once() == 0 and app.published == []


def test_a_keyed_send_inside_the_window_is_dropped_unless_the_first_rolled_back(db: Database) -> None:
    clock = ManualClock()
    outbox = Outbox(db, clock=clock, enqueue_window_ms=60_000)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        assert outbox.send(tx, "charge", ["o-1"], key="o-1") is not None
        raise RuntimeError("rolled back: the key is free again")
    with db.transaction() as tx:
        assert outbox.send(tx, "charge", ["o-1"], key="o-1") is not None
    with db.transaction() as tx:
        assert outbox.send(tx, "charge", ["o-1"], key="o-1") is None
        assert outbox.send(tx, "refund", ["o-1"], key="o-1") is not None  # keys are per job
    clock.advance(60_000)
    with db.transaction() as tx:
        assert outbox.send(tx, "charge", ["o-1"], key="o-1") is not None
    assert OutboxRelay(Recorder(), db).run_once() == 3


def test_a_job_without_a_key_is_keyed_by_its_message_id(db: Database) -> None:
    app, outbox = Recorder(), Outbox(db)
    with db.transaction() as tx:
        message_id = outbox.send(tx, "charge", [1])
    OutboxRelay(app, db).run_once()
    assert app.published[0].key == message_id and app.published[0].extra["outbox"] >= 1


def test_arguments_json_cannot_carry_fail_at_send(db: Database) -> None:
    outbox = Outbox(db)
    with pytest.raises(SerializationError, match="JSON"), db.transaction() as tx:
        outbox.send(tx, "charge", [object()])
    with pytest.raises(TypeError, match="unknown options"), db.transaction() as tx:
        outbox.send(tx, "charge", [], countdown=3)
    with pytest.raises(ValueError, match=r"priority must be 0\.\.9"), db.transaction() as tx:
        outbox.send(tx, "charge", [], priority=10)
    assert OutboxRelay(Recorder(), db).pending() == 0


def fill(db: Database, rows: int) -> list[str]:
    outbox = Outbox(db)
    with db.transaction() as tx:
        return [str(outbox.send(tx, "work", [i])) for i in range(rows)]


def test_a_failed_publish_leaves_its_batch_pending_to_be_republished_under_the_same_ids(db: Database) -> None:
    ids = fill(db, 5)
    app = Recorder(fail_at=2)
    relay = OutboxRelay(app, db)
    with pytest.raises(ConnectionError):
        relay.run_once()
    assert relay.pending() == 5
    app.fail_at = None
    assert relay.run_once() == 5 and relay.pending() == 0
    assert [m.id for m in app.published] == ids[:2] + ids


class RelayDied(BaseException):
    """The relay process dying after a publish, before its transaction commits."""


def test_a_relay_dying_between_publish_and_mark_republishes_with_the_same_id_and_key(db: Database) -> None:
    ids = fill(db, 3)
    first = Recorder()
    original = first.enqueue_many

    def publish_then_die(messages: list[Any]) -> list[Any]:
        original(messages)
        raise RelayDied

    first.enqueue_many = publish_then_die  # type: ignore[method-assign]
    with pytest.raises(RelayDied):
        OutboxRelay(first, db).run_once()
    second = Recorder()
    assert OutboxRelay(second, db).run_once() == 3
    assert [(m.id, m.key) for m in second.published] == [(m.id, m.key) for m in first.published]
    assert [m.id for m in second.published] == ids


def test_two_relays_publish_every_row_exactly_once(any_db_url: str) -> None:  # noqa: F811
    ids = fill(Database(any_db_url, durable=False), 300)
    app = Recorder(pause_s=0.001)
    totals: list[int] = []

    def relay() -> None:
        mine = OutboxRelay(app, Database(any_db_url, durable=False))  # own connection, as another process
        total = 0
        while (n := mine.run_once(limit=20)) > 0:
            total += n
        totals.append(total)

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(m.id for m in app.published) == sorted(ids)
    assert sum(totals) == 300


def test_sent_rows_are_purged_after_their_retention(db: Database) -> None:
    fill(db, 2)
    app = Recorder()
    relay = OutboxRelay(app, db, clock=app.clock)
    relay.run_once()
    assert relay.purge_sent(retention_ms=1_000) == 0
    app.clock.advance(1_000)
    assert relay.purge_sent(retention_ms=1_000) == 2


def test_the_relay_loop_publishes_until_stopped(db: Database) -> None:
    fill(db, 3)
    app, stop = Recorder(), threading.Event()
    thread = threading.Thread(target=OutboxRelay(app, db).run, args=(stop, 10))
    thread.start()
    while len(app.published) < 3:
        threading.Event().wait(0.01)
    stop.set()
    thread.join()
    assert len(app.published) == 3
