"""An exchange's arguments changed in place (what SNS keeps a topic's state in): applied, stored by
the durable topology (SQLite) so a restart reads them back, and refused for the alternate exchange."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ferrymq.errors import PreconditionFailed
from ferrymq.storage.metadata import Metadata
from tests.support.core import new_broker


class Recording:
    """A TopologyStore that records what it is told (and keeps nothing)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args: self.calls.append((name, *args))


def test_changed_arguments_are_applied_and_told_to_the_topology() -> None:
    topology = Recording()
    broker, _ = new_broker(topology=topology)
    vhost = broker.vhosts["/"]
    durable = vhost.declare_exchange("t", "fanout", durable=True, arguments={"x-a": "1"})
    transient = vhost.declare_exchange("u", "fanout", arguments={})
    vhost.change_exchange_arguments(durable, {"x-a": "2"})
    vhost.change_exchange_arguments(transient, {"x-b": "3"})
    assert durable.arguments == {"x-a": "2"} and transient.arguments == {"x-b": "3"}
    changes = [c for c in topology.calls if c[0] == "exchange_arguments_changed"]
    assert changes == [("exchange_arguments_changed", "/", "t", {"x-a": "2"})]  # transient: not stored


def test_the_alternate_exchange_cannot_change_this_way() -> None:
    broker, _ = new_broker()
    vhost = broker.vhosts["/"]
    ex = vhost.declare_exchange("t", "fanout", durable=True, arguments={"alternate-exchange": "ae"})
    with pytest.raises(PreconditionFailed):
        vhost.change_exchange_arguments(ex, {})
    assert ex.arguments == {"alternate-exchange": "ae"}


def test_sqlite_keeps_the_changed_arguments_across_a_reopen(tmp_path: Path) -> None:
    def open_meta() -> Metadata:
        return Metadata(tmp_path, lambda path, args: None,  # type: ignore[arg-type,return-value]
                        lambda t: json.dumps(t).encode(), lambda b: json.loads(b))
    meta = open_meta()
    meta.exchange_declared("/", "t", "fanout", False, False, {"x-sns-topic": "{}"})
    meta.exchange_arguments_changed("/", "t", {"x-sns-topic": '{"tags": {"a": "b"}}'})
    meta.close()
    (stored,) = open_meta().load().exchanges
    assert stored == ("/", "t", "fanout", False, False, {"x-sns-topic": '{"tags": {"a": "b"}}'})
