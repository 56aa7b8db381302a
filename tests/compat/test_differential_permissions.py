"""Permission refusals against RabbitMQ 3.10: the same user, permissions and topic permissions made
through each broker's management API, the same ~40 AMQP calls by pika (declares, binds, publishes
to a topic exchange with allowed and refused routing keys, consumes, gets, purges, deletes, amq.*
names, connections to a refused and to a missing vhost) → the same reply codes and reply texts;
then the same declares, binds, publishes, gets and deletes through the management API by a
management user with the same permissions, and declares naming a dead-letter or alternate exchange
(the user may not write it, or may not read what it declares) → the same statuses and reasons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ferrymq import EmbeddedBroker
from ferrymq.bench.rabbitmq_node import available, start_rabbitmq
from tests.support import permissions

pytestmark = pytest.mark.rabbitmq


@pytest.fixture(scope="module")
def rabbit_table() -> Iterator[dict[str, tuple[Any, ...]]]:
    if not available():
        pytest.skip("rabbitmq-server not installed: differential tests against RabbitMQ skipped")
    node = start_rabbitmq(management=True)
    try:
        permissions.setup(node.management_url + "/api")
        table = permissions.run_table("127.0.0.1", node.port)
        yield {**table, **permissions.run_http_table(node.management_url + "/api")}
    finally:
        node.stop()


@pytest.fixture(scope="module")
def ferry_table() -> dict[str, tuple[Any, ...]]:
    with EmbeddedBroker() as b:
        permissions.setup(b.http_url + "/api")
        table = permissions.run_table("127.0.0.1", b.amqp_port)
        return {**table, **permissions.run_http_table(b.http_url + "/api")}


def test_every_call_gets_rabbitmqs_reply_code_and_text(rabbit_table: dict[str, Any],
                                                       ferry_table: dict[str, Any]) -> None:
    differ = {name: (rabbit_table[name], ferry_table[name]) for name in rabbit_table
              if rabbit_table[name] != ferry_table[name]}
    assert not differ, "\n".join(f"{n}: rabbitmq {r} ferrymq {f}" for n, (r, f) in differ.items())


def test_the_table_exercises_refusals_and_allowed_paths(rabbit_table: dict[str, Any]) -> None:
    codes = {outcome[0] for outcome in rabbit_table.values()}
    assert {"ok", 403, 404, 530} <= codes
