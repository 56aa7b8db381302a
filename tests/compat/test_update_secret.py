"""connection.update-secret from pika, against FerryMQ and RabbitMQ 3.10 side by side: for users of
the internal backend RabbitMQ acknowledges any new secret (their state cannot expire) and the
connection goes on working; FerryMQ answers the same."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import pytest

from ferrymq.testing import EmbeddedBroker
from tests.support.fixtures import rabbitmq  # noqa: F401

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ferry() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as b:
        yield b


def _update_secret_then_use(url: str) -> list[object]:
    """What a client sees: each update-secret's outcome, then whether the connection still works."""
    conn = pika.BlockingConnection(pika.URLParameters(url))
    seen: list[object] = []
    try:
        for secret in ("guest", "not-the-password"):
            conn.update_secret(secret, "token rotation")
            seen.append(("update-secret-ok", conn.is_open))
        ch = conn.channel()
        queue = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", queue, b"after rotation")
        seen.append(ch.basic_get(queue, auto_ack=True)[2])
    finally:
        if conn.is_open:
            conn.close()
    return seen


def test_update_secret_is_answered_as_rabbitmq_answers_it(ferry, rabbitmq):  # noqa: F811
    expected = [("update-secret-ok", True), ("update-secret-ok", True), b"after rotation"]
    assert _update_secret_then_use(rabbitmq.amqp_url) == expected
    assert _update_secret_then_use(ferry.amqp_url) == expected
