"""The Kafka world: a client producing and fetching over the simulated network, and offset commits.

What is real and what stands in (the Kafka topic model is moving from ferrymq/server/kafka_*.py into
the core; ``Partitions`` below is the one place to re-point at that core API once it lands):
  * real: the Kafka codecs on the node (framing, request headers, Produce v8 and Fetch v11 decoding,
    response encoding: see ``kafka_wire``); RecordBatch v2 encoding, validation (CRC32C, framing) and
    in-place offset assignment (ferrymq.protocols.kafka.records / batch); ``StreamLog`` segments,
    reads and recovery (ferrymq.storage.stream_log); the group ``Coordinator``'s offset commits
    (ferrymq.core.groups); the node's one commit pipeline (produce and offset-commit acks are held
    until the fsync that covers them, responses leave in request order);
  * stand-in: ``Partitions`` (the produce / fetch path of server/kafka_data.py: one topic, no topic
    registry, retention or idempotence), ``OffsetsStore`` (the format idea of server/kafka_offsets.py:
    one batch per commit, latest key wins on replay; commits are made on the Coordinator directly, not
    through an OffsetCommit request), the client's request encoders (``kafka_wire``), and the
    power-loss model of ``FaultyStreamLog`` (ferrymq.storage.faulty), the one FaultyLog shares.

Invariants: responses come back in request order; a produce ack's base offset is at or above the end
of every earlier acked produce on its partition; every acked record reads back identically, after
every restart and at the end; fetched offsets strictly increase from the position asked and stay
below the high watermark; a committed offset, once its commit was acked, never goes back.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING

from ferrymq.core.groups import NONE, Coordinator
from ferrymq.protocols.kafka.batch import assign_offsets, validate
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.primitives import I32, Reader
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.sim import kafka_wire as wire
from ferrymq.sim.network import Pipe
from ferrymq.sim.oracle import Violation
from ferrymq.storage.faulty import FaultyStreamLog

if TYPE_CHECKING:
    from ferrymq.sim.node import Node

TOPIC, GROUP, PARTITIONS = "sim.topic", "sim.group", 2
SEGMENT_BYTES = 8 * 1024
READ_BYTES = 64 * 1024


class Partitions:
    """The stand-in for the core's stream API: append a produced batch, read from an offset."""

    def __init__(self, dirs: list[FaultyStreamLog]) -> None:
        self.dirs = dirs

    def produce(self, partition: int, payload: bytes) -> tuple[int, int, FaultyStreamLog]:
        """Validate, assign offsets in place, append; (base offset, count, the log to commit)."""
        d = self.dirs[partition]
        data = bytearray(payload)
        infos = validate(data, len(data))
        base = d.log.next_offset
        end = assign_offsets(data, infos, base)
        d.log.append(data, [(i.start, i.count, i.max_timestamp) for i in infos])
        return base, end - base, d

    def fetch_all(self, partition: int) -> list[tuple[int, bytes | None]]:
        log, out = self.dirs[partition].log, []
        offset = log.start_offset
        while offset < log.next_offset:
            got = self.fetch(partition, offset)
            if not got:
                break
            out += got
            offset = got[-1][0] + 1
        return out

    def read(self, partition: int, offset: int, max_bytes: int) -> tuple[bytes, int, int]:
        """(whole batches from the one holding ``offset``, high watermark, log start offset)."""
        log = self.dirs[partition].log
        return bytes(log.read(offset, max_bytes)), log.next_offset, log.start_offset

    def fetch(self, partition: int, offset: int) -> list[tuple[int, bytes | None]]:
        return records_from(self.read(partition, offset, READ_BYTES)[0], offset)


def records_from(data: bytes, offset: int) -> list[tuple[int, bytes | None]]:
    return [(off, value) for off, _ts, _k, value, _h in decode_batches(data) if off >= offset]


class OffsetsStore:
    """Committed offsets in a stream of their own, replayed into a fresh Coordinator at restart."""

    def __init__(self, d: FaultyStreamLog) -> None:
        self.dir = d

    def append(self, partition: int, offset: int, now_ms: int) -> FaultyStreamLog:
        record = (json.dumps([GROUP, TOPIC, partition]).encode(), json.dumps([offset, ""]).encode(), ())
        data = bytearray(encode_batch([record], now_ms, base_offset=self.dir.log.next_offset))
        info = validate(data, len(data))[0]
        self.dir.log.append(data, [(0, info.count, info.max_timestamp)])
        return self.dir

    def load(self, coordinator: Coordinator) -> None:
        offset, log = self.dir.log.start_offset, self.dir.log
        while offset < log.next_offset:
            data = log.read(offset, READ_BYTES)
            if not data:
                break
            for off, _ts, key, value, _h in decode_batches(bytes(data)):
                if key is not None and value is not None and off >= offset:
                    g, t, p = json.loads(key)
                    coordinator.commit(g, t, p, json.loads(value)[0], "")
                offset = max(offset, off + 1)


class KafkaWorld:
    name = "kafka"

    def __init__(self, stream_factory: type[FaultyStreamLog] = FaultyStreamLog) -> None:
        self.stream_factory = stream_factory
        self.dirs: list[FaultyStreamLog] = []
        self.offsets: OffsetsStore | None = None
        self.node: Node | None = None
        self.coordinator = Coordinator()
        self.incarnation = -1
        self.seq = 0
        self.acked: list[dict[int, bytes | None]] = [{} for _ in range(PARTITIONS)]
        self.acked_end = [0] * PARTITIONS  # one past the highest acked offset
        self.committed_acked = [-1] * PARTITIONS
        self.position = [0] * PARTITIONS
        self.lines: list[str] = []
        self.front: wire.KafkaFront | None = None
        self.to_node: Pipe | None = None
        self.from_node: Pipe | None = None
        self.responses = FrameBuffer(wire.MAX_FRAME)
        self.pending: dict[int, tuple[object, ...]] = {}  # correlation id -> what was asked
        self.fetching: set[int] = set()  # partitions with a fetch in flight
        self.corr = self.generation = 0
        self._counts = dict.fromkeys(("produced", "acked", "fetched", "commits", "commits_acked"), 0)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    # --- the node's side -------------------------------------------------------------------------

    def restarted(self, node: Node) -> list[str]:
        self.node = node
        self.incarnation = node.incarnation
        if not self.dirs:
            root = node.root / "streams"
            make = self.stream_factory
            self.dirs = [make(root / f"{TOPIC}-{p}", segment_bytes=SEGMENT_BYTES) for p in range(PARTITIONS)]
            self.offsets = OffsetsStore(make(root / "__offsets", segment_bytes=SEGMENT_BYTES))
        self.coordinator = Coordinator()
        assert self.offsets is not None
        self.offsets.load(self.coordinator)
        self._check_acked("restart")
        out = []
        for p in range(PARTITIONS):
            got = self.coordinator.committed(GROUP, TOPIC, p)
            self.position[p] = got[0] if got else 0
            out.append(f"{TOPIC}-{p}: end {self.dirs[p].log.next_offset}, committed {self.position[p]}")
        return out

    def crash(self, rng: random.Random) -> list[str]:
        self.front = None  # the connection dies with the node; requests in flight have no answer
        for pipe in (self.to_node, self.from_node):
            if pipe is not None:
                pipe.close()
        out = []
        for d in [*self.dirs, *([self.offsets.dir] if self.offsets else [])]:
            d.crash(rng)
            damage = d.damages[-1]
            dropped, torn = damage.dropped_bytes, damage.kept_unsynced_bytes
            if dropped or torn:
                out.append(f"{d.path.name}: dropped {dropped} B, torn {torn} B")
        return out

    def _check_acked(self, when: str) -> None:
        for p, acked in enumerate(self.acked):
            log = self.dirs[p].log
            if log.next_offset < self.acked_end[p]:
                raise Violation(f"{TOPIC}-{p} ({when}): log ends at {log.next_offset}, below acked "
                                f"offset {self.acked_end[p] - 1}")
            got = dict(Partitions(self.dirs).fetch_all(p)) if acked else {}
            for off, value in acked.items():
                if got.get(off, b"<missing>") != value:
                    raise Violation(f"{TOPIC}-{p} ({when}): acked offset {off} reads {got.get(off)!r}, "
                                    f"not {value!r}")
            got_c = self.coordinator.committed(GROUP, TOPIC, p)
            if (got_c[0] if got_c else -1) < self.committed_acked[p]:
                raise Violation(f"{TOPIC}-{p} ({when}): committed offset went back to {got_c} from acked "
                                f"{self.committed_acked[p]}")

    def drain_effects(self) -> None:
        pass  # produce replies wait in the commit pipeline, not in an outbox

    def write_out(self) -> None:
        if self.front is not None:
            self.front.write_out()

    # --- steps -----------------------------------------------------------------------------------

    def step(self, rng: random.Random) -> str | None:
        if self.front is None:
            line: str | None = self._connect()
        else:
            roll = rng.random()
            if roll < 0.45:
                line = self._network(rng)
            elif roll < 0.7:
                line = self._produce(rng)
            elif roll < 0.9:
                line = self._fetch(rng)
            else:
                line = self._commit(rng)
        if self.lines:
            line = "; ".join([line or "net", *self.lines])
            self.lines.clear()
        return line

    def _connect(self) -> str:
        assert self.node is not None
        self.generation += 1
        self.to_node, self.from_node = Pipe("kafka>node"), Pipe("node>kafka")
        front: wire.KafkaFront | None = None

        def alive() -> bool:
            return self.front is front and front is not None

        front = wire.KafkaFront(Partitions(self.dirs), self.node.commit, TOPIC, self.from_node, alive)
        self.front = front
        self.responses = FrameBuffer(wire.MAX_FRAME)
        self.pending = {}
        self.fetching = set()
        return f"kafka client connects (#{self.generation})"

    def _network(self, rng: random.Random, whole: bool = False) -> str | None:
        assert self.front is not None and self.to_node is not None and self.from_node is not None
        busy = [p for p in (self.to_node, self.from_node) if p.pending]
        if not busy:
            return None
        pipe = rng.choice(busy)
        data = pipe.take(rng, whole)
        if pipe is self.to_node:
            self.front.receive(data)
        else:
            self._responses(data)
        return f"net {pipe.name} {len(data)}B"

    def _send(self, request: bytes, what: tuple[object, ...]) -> None:
        assert self.to_node is not None
        self.to_node.write(request)
        self.pending[self.corr] = what
        self.corr += 1

    def _responses(self, data: bytes) -> None:
        self.responses.receive_data(data)
        for frame in self.responses.frames():
            r = Reader(frame)
            corr = I32.unpack_from(frame, 0)[0]
            r.pos = 4
            first = min(self.pending, default=None)
            if corr != first:
                raise Violation(f"kafka response {corr} out of request order (oldest pending {first})")
            what = self.pending.pop(corr)
            if what[0] == "produce":
                code, base = wire.read_produce_response(r)
                self._acked(what[1], base, what[2], code)  # type: ignore[arg-type]
            else:
                code, hw, records = wire.read_fetch_response(r)
                self._fetched(what[1], what[2], records, hw, code)  # type: ignore[arg-type]

    def _produce(self, rng: random.Random) -> str:
        assert self.node is not None
        p = rng.randrange(PARTITIONS)
        values = []
        for _ in range(rng.randint(1, 4)):
            self.seq += 1
            values.append(f"v{self.seq}|".encode() + b"y" * rng.choice((0, 30, 300)))
        batch = encode_batch([(None, v, ()) for v in values], self.node.clock.now_ms())
        self._send(wire.produce_request(self.corr, TOPIC, p, batch), ("produce", p, values))
        self._counts["produced"] += 1
        return f"produce {TOPIC}-{p} {len(values)} record(s) corr={self.corr - 1}"

    def _acked(self, p: int, base: int, values: list[bytes], code: int) -> None:
        if code != 0:
            raise Violation(f"{TOPIC}-{p}: produce answered error {code}")
        if base < self.acked_end[p]:
            raise Violation(f"{TOPIC}-{p}: produce acked at base {base}, below acked end {self.acked_end[p]}")
        for i, v in enumerate(values):
            self.acked[p][base + i] = v
        self.acked_end[p] = base + len(values)
        self._counts["acked"] += 1
        self.lines.append(f"produce ack {TOPIC}-{p} base={base}")

    def _fetch(self, rng: random.Random) -> str | None:
        p = rng.randrange(PARTITIONS)
        if p in self.fetching:
            return None
        self.fetching.add(p)
        self._send(wire.fetch_request(self.corr, TOPIC, p, self.position[p]), ("fetch", p, self.position[p]))
        return f"fetch {TOPIC}-{p} from {self.position[p]}"

    def _fetched(self, p: int, pos: int, data: bytes, hw: int, code: int) -> None:
        self.fetching.discard(p)
        if code != 0:
            raise Violation(f"{TOPIC}-{p}: fetch answered error {code}")
        last = pos - 1
        records = records_from(data, pos)
        for off, value in records:
            if off <= last or off >= hw:
                raise Violation(f"{TOPIC}-{p}: fetch from {pos} returned offset {off} after {last} (hw {hw})")
            want = self.acked[p].get(off)
            if want is not None and value != want:
                raise Violation(f"{TOPIC}-{p}: acked offset {off} fetched as {value!r}, not {want!r}")
            last = off
        self.position[p] = last + 1
        self._counts["fetched"] += len(records)
        self.lines.append(f"fetched {TOPIC}-{p} from {pos}: {len(records)} record(s), hw {hw}")

    def _alive(self, incarnation: int) -> bool:
        return self.incarnation == incarnation

    def _commit(self, rng: random.Random) -> str:
        assert self.node is not None and self.offsets is not None
        p = rng.randrange(PARTITIONS)
        offset = self.position[p]
        code = self.coordinator.check_commit(GROUP, -1, "")
        if code != NONE:
            raise Violation(f"offset commit refused with {code} for a simple consumer")
        self.coordinator.commit(GROUP, TOPIC, p, offset, "")
        self.node.commit.note_append(self.offsets.append(p, offset, self.node.clock.now_ms()))
        inc = self.incarnation
        self.node.commit.hold(lambda: self._alive(inc), lambda ok: self._commit_acked(p, offset))
        self._counts["commits"] += 1
        return f"offset commit {TOPIC}-{p} = {offset}"

    def _commit_acked(self, p: int, offset: int) -> None:
        self.committed_acked[p] = max(self.committed_acked[p], offset)
        self._counts["commits_acked"] += 1
        self.lines.append(f"offset commit ack {TOPIC}-{p} = {offset}")

    # --- the end -----------------------------------------------------------------------------------

    def drain_step(self, rng: random.Random) -> bool:
        assert self.node is not None
        if self.front is None:
            self._connect()
        while self._network(rng, whole=True):
            pass
        self.lines.clear()
        quiet = not self.pending and self.node.commit.settled
        return quiet and not (self.to_node and self.to_node.pending)

    def final_check(self) -> None:
        self._check_acked("end")

    def close(self) -> None:
        for d in [*self.dirs, *([self.offsets.dir] if self.offsets else [])]:
            d.log.close()
