"""A message dead-lettered from one durable queue into another is never lost by a crash between the
two queues' writes, nor by a power cut between their fsyncs.

The core runs over QueueLogs on MemoryLogs (they outlive the broker, as files do) with the server's
commit bookkeeping (CommitTurns). A kill -9 keeps whatever a turn had written to the OS when it
struck: any prefix of the turn's writes, in the order the turn makes them. A power cut keeps only
what an fsync covered. Either way a confirmed message must be in the source or the target queue
after recovery (in both is a duplicate, allowed; in neither is a loss).
"""

from __future__ import annotations

from typing import Any

import pytest

from ferrymq.core.broker import Broker
from ferrymq.protocols.amqp.properties import encode_properties, intern_properties
from ferrymq.storage.commit import FsyncPolicy
from ferrymq.storage.memory import MemoryLog
from ferrymq.storage.queue_log import QueueLog
from ferrymq.storage.turns import CommitTurns
from tests.support.core import new_broker, open_channel, publish

HOLD, WORK = "hold", "work"
DLX_ARGS = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": WORK}


class LogTopology:
    """Durable queues get a QueueLog on a MemoryLog that outlives the broker (the restart), all
    written and committed through one CommitTurns, as the server's pipeline does."""

    def __init__(self) -> None:
        self.logs: dict[str, MemoryLog] = {}
        self.turns = CommitTurns(FsyncPolicy("always"))

    def queue_declared(self, vhost: str, name: str, auto_delete: bool, arguments: dict[str, Any]) -> QueueLog:
        log = self.logs.setdefault(name, MemoryLog())
        return QueueLog(log, encode_properties, intern_properties, self.turns)

    def __getattr__(self, _name: str) -> Any:
        return lambda *a, **k: None

    def end_turn(self) -> None:
        """Write every dirty log, then run the commit the turn asks for to completion."""
        self.turns.close_turn()
        if self.turns.next_action(0) == "commit":
            covers = self.turns.start_commit()
            self.turns.committed(covers, self.turns.group.commit())

    def restart(self) -> LogTopology:
        """A new incarnation on the same logs: what was only buffered is gone."""
        fresh = LogTopology()
        fresh.logs = self.logs
        return fresh


def _declare(broker: Broker) -> None:
    vhost = broker.vhosts["/"]
    vhost.declare_queue(WORK, connection=None, durable=True)
    vhost.declare_queue(HOLD, connection=None, durable=True, arguments=DLX_ARGS)


def _bodies(broker: Broker) -> dict[str, list[bytes]]:
    queues = broker.vhosts["/"].queues
    return {name: [e.msg.body for e in queues[name].ready_entries()] for name in (HOLD, WORK)}


def _expiring_turn(count: int) -> tuple[LogTopology, Any, list[Any]]:
    """Messages published, confirmed (written and committed), then a turn in which they all expire
    and dead-letter: returns that turn's dirty logs in the order the turn writes them."""
    topo = LogTopology()
    broker, clock = new_broker(topology=topo)
    _declare(broker)
    ch = open_channel(broker)
    for i in range(count):
        publish(ch, f"{i}", HOLD, delivery_mode=2, expiration="1000")
    topo.end_turn()
    clock.advance(1001)
    broker.tick()
    return topo, broker, list(topo.turns.dirty)


@pytest.mark.parametrize("written", [0, 1, 2])
def test_a_kill_between_the_writes_of_a_dead_letter_turn_loses_no_message(written):
    topo, _broker, dirty = _expiring_turn(3)
    assert len(dirty) == 2  # the holding queue's settles and the work queue's publishes
    for writer in dirty[:written]:
        writer.write()
    broker2, _ = new_broker(topology=topo.restart())
    _declare(broker2)
    found = _bodies(broker2)
    for i in range(3):
        assert f"{i}".encode() in found[HOLD] + found[WORK], f"message {i} lost ({written} write(s) made)"


def test_the_dead_letter_source_settles_only_after_the_commit_covering_its_target():
    topo, _broker, _dirty = _expiring_turn(3)
    topo.turns.close_turn()  # both writes made, the commit not yet returned: a power cut keeps
    holding = topo.logs[HOLD]  # only the fsynced records, so the source must not have settled yet
    assert all(type_ != 2 for type_, _ in holding.read_run(holding.first_offset, 1 << 20))
    covers = topo.turns.start_commit()
    topo.turns.committed(covers, topo.turns.group.commit())
    topo.end_turn()  # the settle goes out in the turn after
    broker2, _ = new_broker(topology=topo.restart())
    _declare(broker2)
    assert _bodies(broker2) == {HOLD: [], WORK: [b"0", b"1", b"2"]}
