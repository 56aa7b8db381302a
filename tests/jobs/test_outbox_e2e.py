"""The outbox and enqueue deduplication end to end: jobs written in business transactions,
relayed to a real broker, run by a real worker with IdempotencyMiddleware; keyed sends through
``send()`` — on a SQLite file and on a private PostgreSQL server."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import pytest

from ferrymq.jobs import App, current
from ferrymq.jobs.idempotency import DUPLICATE_SEND, IdempotencyMiddleware
from ferrymq.jobs.outbox import Outbox, OutboxRelay
from ferrymq.jobs.testing import worker_thread
from ferrymq.testing import EmbeddedBroker
from tests.support.jobs import wait_until
from tests.support.postgres import any_db_url, postgres_server  # noqa: F401

ORDERS = 40


class RelayDied(BaseException):
    """The relay's process dying after the broker confirmed its batch, before the rows were marked."""


class DiesAfterPublishing:
    """The app as a relay sees it, except that the relay dies right after each confirmed batch."""

    def __init__(self, app: App) -> None:
        self.app, self.jobs, self.db, self.clock = app, app.jobs, app.db, app.clock

    def enqueue_many(self, messages: list[Any]) -> list[Any]:
        self.app.enqueue_many(messages)
        raise RelayDied


def make_app(url: str, store: str) -> tuple[App, Any]:
    app = App(url, store=store)
    assert app.db is not None
    if not any(isinstance(m, IdempotencyMiddleware) for m in app.middleware):  # unless App adds it
        app.add_middleware(IdempotencyMiddleware(app.db))
    app.db.create(["CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)",
                   "CREATE TABLE IF NOT EXISTS charges (order_id INTEGER NOT NULL)"])

    @app.job(name="charge", queue="outbox_e2e")
    def charge(order_id: int) -> None:
        current.tx.execute("INSERT INTO charges (order_id) VALUES (?)", (order_id,))

    return app, charge


def count(app: App, sql: str) -> int:
    assert app.db is not None
    with app.db.transaction() as tx:
        return int(tx.execute(sql).fetchone()[0])


def test_committed_orders_are_charged_once_even_when_the_relay_dies_after_publishing(
        any_db_url: str) -> None:  # noqa: F811
    with EmbeddedBroker() as broker:
        app, charge = make_app(broker.amqp_url, any_db_url)
        assert app.db is not None
        outbox = Outbox(app.db)
        for order in range(ORDERS + 10):
            rolled_back = order >= ORDERS
            with pytest.raises(RuntimeError) if rolled_back else nullcontext(), app.db.transaction() as tx:
                tx.execute("INSERT INTO orders (id) VALUES (?)", (order,))
                outbox.send(tx, charge, [order])
                if rolled_back:
                    raise RuntimeError("the order is rolled back, and its job with it")
        with pytest.raises(RelayDied):
            OutboxRelay(DiesAfterPublishing(app), app.db).run_once(limit=1_000)
        assert OutboxRelay(app).run_once(limit=1_000) == ORDERS  # published again: same ids, same keys
        with worker_thread(app, concurrency=4) as worker:
            wait_until(lambda: worker.processed >= 2 * ORDERS, what="both copies of every job handled")
        assert count(app, "SELECT COUNT(*) FROM charges") == ORDERS
        assert count(app, "SELECT COUNT(DISTINCT order_id) FROM charges") == ORDERS
        assert count(app, f"SELECT COUNT(*) FROM charges WHERE order_id >= {ORDERS}") == 0
        app.close()


def test_a_second_send_with_the_same_key_never_reaches_the_broker(any_db_url: str) -> None:  # noqa: F811
    import pika

    with EmbeddedBroker() as broker:
        app, charge = make_app(broker.amqp_url, any_db_url)
        first = charge.send(7, key="order-7")
        second = charge.send(7, key="order-7")
        other = charge.send(8, key="order-8")
        assert (first.skipped, second.skipped, other.skipped) == (None, DUPLICATE_SEND, None)
        with pika.BlockingConnection(pika.URLParameters(broker.amqp_url)) as conn:
            assert conn.channel().queue_declare("outbox_e2e", passive=True).method.message_count == 2
        app.close()
