"""The AMQP world: simulated clients and the node's AMQP front end, over seeded pipes."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ferrymq.sim.amqp_client import TARGETS, SimClient
from ferrymq.sim.amqp_node import AmqpNode, message_id
from ferrymq.sim.network import Pipe
from ferrymq.sim.oracle import AmqpOracle, Violation

if TYPE_CHECKING:
    from ferrymq.sim.node import Node

OPS = (("publish", 30), ("consume", 4), ("cancel", 2), ("get", 4), ("ack", 14), ("nack", 4), ("reject", 3),
       ("close", 1))


class AmqpWorld:
    name = "amqp"

    def __init__(self, clients: int = 3) -> None:
        self.oracle = AmqpOracle()
        self.lines: list[str] = []
        self.clients = [SimClient(f"c{i}", self.oracle, confirms=i != clients - 1 or clients == 1,
                                  trace=self.lines.append) for i in range(clients)]
        self.pipes: dict[str, tuple[Pipe, Pipe]] = {}  # client name -> (to node, from node)
        self.node: Node | None = None
        self.front: AmqpNode | None = None

    # --- the node's side -------------------------------------------------------------------------

    def restarted(self, node: Node) -> list[str]:
        self.node = node
        self.front = AmqpNode(node.broker, node.commit, self.oracle, node.log_key)
        vhost = node.broker.vhosts["/"]
        out = []
        for queue, *_ in TARGETS:
            q = vhost.queues.get(queue)
            if q is not None:
                ids = [message_id(e.msg) for e in q.ready_entries()]
                self.oracle.recovered(queue, ids, q.paged_count)
                out.append(f"recovered {queue}: {len(ids)} ready, {q.paged_count} paged")
        return out

    def crash(self, rng: random.Random) -> list[str]:
        assert self.node is not None
        self.oracle.crashed(self.node.commit.synced_turn)
        for client in self.clients:
            if client.up:
                client.lost()
        for to_node, from_node in self.pipes.values():
            to_node.close()
            from_node.close()
        self.pipes = {}
        return []

    def drain_effects(self) -> None:
        assert self.front is not None
        self.front.drain_all()

    def write_out(self) -> None:
        assert self.front is not None
        for cid in self.front.write_all():
            raise Violation(f"the node closed connection {cid}")

    # --- steps -----------------------------------------------------------------------------------

    def step(self, rng: random.Random) -> str | None:
        line = self._step(rng)
        if self.oracle.broken is not None:
            raise Violation(self.oracle.broken)
        return line

    def _step(self, rng: random.Random) -> str | None:
        roll = rng.random()
        if roll < 0.45:
            return self._network(rng)
        client = rng.choice(self.clients)
        if not client.up:
            return self._connect(client)
        if not client.ready:
            return None
        op = rng.choices([o for o, _ in OPS], [w for _, w in OPS])[0]
        return self._op(client, op, rng)

    def _op(self, client: SimClient, op: str, rng: random.Random) -> str | None:
        if op == "publish":
            line: str | None = client.publish(rng)
        elif op == "consume":
            line = client.consume(rng)
        elif op == "cancel":
            line = client.cancel(rng)
        elif op == "get":
            line = client.get(rng)
        elif op == "close":
            line = client.close(rng)
        else:
            line = client.settle(rng, op)
        return f"{client.cid} {line}" if line else None

    def _connect(self, client: SimClient) -> str:
        assert self.front is not None
        to_node, from_node = Pipe(f"{client.name}>node"), Pipe(f"node>{client.name}")
        client.connect(to_node, from_node)
        self.front.accept(client.cid, from_node)
        self.pipes[client.name] = (to_node, from_node)
        return f"{client.cid} connects"

    def _network(self, rng: random.Random, whole: bool = False) -> str | None:
        busy = [(name, d) for name, pair in sorted(self.pipes.items()) for d in (0, 1) if pair[d].pending]
        if not busy:
            return None
        name, direction = rng.choice(busy)
        return self._carry(name, direction, rng, whole)

    def _carry(self, name: str, direction: int, rng: random.Random, whole: bool) -> str:
        assert self.front is not None
        client = next(c for c in self.clients if c.name == name)
        pipe = self.pipes[name][direction]
        data = pipe.take(rng, whole)
        if direction == 0:
            self.front.receive(client.cid, data)
        else:
            client.receive(data, self._core_flag)
            if not client.up:  # its close-ok came: the connection is gone
                self.pipes.pop(name)
        line = f"net {pipe.name} {len(data)}B"
        if self.lines:
            line += "; " + "; ".join(self.lines)
            self.lines.clear()
        return line

    def _core_flag(self, cid: str, tag: int) -> bool | None:
        assert self.front is not None
        conn = self.front.connections.get(cid)
        return conn.emitted_flags.pop((1, tag), None) if conn is not None else None

    # --- the end -----------------------------------------------------------------------------------

    def drain_step(self, rng: random.Random) -> bool:
        for client in self.clients:
            if not client.up:
                self._connect(client)
            elif client.ready and not client.drain_mode:
                client.drain_mode = True
                client.consume_all()
            elif client.ready:
                client.ack_all()
        for name in sorted(self.pipes):
            for direction in (0, 1):
                while name in self.pipes and self.pipes[name][direction].pending:
                    self._carry(name, direction, rng, whole=True)
        self.lines.clear()
        if self.oracle.broken is not None:
            raise Violation(self.oracle.broken)
        return self._quiet()

    def _quiet(self) -> bool:
        assert self.node is not None
        if any(not c.drain_mode or c.expect or c.held for c in self.clients):
            return False
        if any(p.pending for pair in self.pipes.values() for p in pair):
            return False
        if not self.node.commit.settled or self.node.broker.dirty:
            return False
        queues = self.node.broker.vhosts["/"].queues
        return all(q.message_count == 0 and q.unacked_count == 0 for q in queues.values())

    def final_check(self) -> None:
        assert self.node is not None
        queues = self.node.broker.vhosts["/"].queues
        self.oracle.final({name: q.message_count for name, q in queues.items() if q.message_count})

    def counts(self) -> dict[str, int]:
        return dict(self.oracle.counts)

    def close(self) -> None:
        pass
