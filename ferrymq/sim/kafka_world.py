"""The Kafka world: a client producing and fetching over the simulated network, and offset commits.

What is real: the Kafka codecs on the node (framing, request headers, Produce v8 and Fetch v11
decoding, response encoding: see ``kafka_wire``); the server's produce and fetch paths
(ferrymq.protocols.kafka.partitions: topic lookup, batch validation by CRC32C and framing,
idempotent-producer checks, in-place offset assignment, append, appended notifications) over the
core's ``TopicRegistry``; the offsets log's format and the offset commit through the core's
``Coordinator`` (ferrymq.protocols.kafka.offsets); ``StreamLog`` segments, reads and recovery under
``FaultyStreamLog``'s power-loss model; the node's commit pipeline bookkeeping (produce and
offset-commit acks are held until the fsync that covers them, responses leave in request order).

The client is an idempotent producer (one producer id and epoch, a sequence per partition, at most
five batches in flight per partition, as Kafka's): after a power cut it reconnects and retries every
produce that has no ack, so the broker's producer state, rebuilt from the log at restart, decides
which retries are duplicates.

Stand-ins: ``SimTopicStore`` (ferrymq.sim.topology) for StreamStore's topic.json files; the client's
request encoders (``kafka_wire``); offset commits are made by calling ``commit_offsets`` directly,
not through an OffsetCommit request (the sim's client has no codec for it).

Invariants: responses come back in request order; a produce ack's base offset is at or above the end
of every earlier acked produce on its partition; every acked record reads back identically, after
every restart and at the end; no record is stored twice (a retry of a stored batch is a duplicate);
fetched offsets strictly increase from the position asked and stay below the high watermark; a
committed offset, once its commit was acked, never goes back.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from ferrymq.core.groups import Coordinator
from ferrymq.core.topics import Topic, TopicRegistry
from ferrymq.protocols.kafka import errors
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.offsets import OffsetsLog, commit_offsets
from ferrymq.protocols.kafka.partitions import producers_from
from ferrymq.protocols.kafka.primitives import I32, Reader
from ferrymq.protocols.kafka.records import decode_batches, encode_batch
from ferrymq.sim import kafka_wire as wire
from ferrymq.sim.network import Pipe
from ferrymq.sim.oracle import Violation
from ferrymq.sim.topology import SimTopicStore, stream_crash
from ferrymq.storage.faulty import FaultyStreamLog

if TYPE_CHECKING:
    from ferrymq.sim.node import Node

TOPIC, GROUP, PARTITIONS = "sim.topic", "sim.group", 2
PRODUCER_ID, PRODUCER_EPOCH = 7, 0  # one idempotent producer for the client's whole life
IN_FLIGHT_MAX = 5  # per partition, as Kafka's idempotent producers (the broker remembers 5 batches)
SEGMENT_BYTES = 8 * 1024  # small, so segments roll within a short run
READ_BYTES = 64 * 1024


def records_from(data: bytes, offset: int) -> list[tuple[int, bytes | None]]:
    return [(off, value) for off, _ts, _k, value, _h in decode_batches(data) if off >= offset]


def read_all(lg: FaultyStreamLog) -> list[tuple[int, bytes | None]]:
    """Every record of a partition, read straight from its log (the oracle's view, not a client's)."""
    out: list[tuple[int, bytes | None]] = []
    offset = lg.start_offset
    while offset < lg.next_offset:
        got = records_from(lg.read(offset, READ_BYTES), offset)
        if not got:
            break
        out += got
        offset = got[-1][0] + 1
    return out


class KafkaWorld:
    name = "kafka"

    def __init__(self, stream_factory: type[FaultyStreamLog] = FaultyStreamLog) -> None:
        self.stream_factory = stream_factory
        self.store: SimTopicStore | None = None
        self.offsets_log: FaultyStreamLog | None = None
        self.topics: TopicRegistry | None = None
        self.offsets: OffsetsLog | None = None
        self.node: Node | None = None
        self.coordinator = Coordinator()
        self.incarnation = -1
        self.seq = 0
        self.acked: list[dict[int, bytes | None]] = [{} for _ in range(PARTITIONS)]
        self.acked_end = [0] * PARTITIONS  # one past the highest acked offset
        self.committed_acked = [-1] * PARTITIONS
        self.position = [0] * PARTITIONS
        self.next_sequence = [0] * PARTITIONS
        self.unacked: list[list[tuple[list[bytes], bytes]]] = [[] for _ in range(PARTITIONS)]  # in order
        self.lines: list[str] = []
        self.front: wire.KafkaFront | None = None
        self.to_node: Pipe | None = None
        self.from_node: Pipe | None = None
        self.responses = FrameBuffer(wire.MAX_FRAME)
        self.pending: dict[int, tuple[object, ...]] = {}  # correlation id -> what was asked
        self.fetching: set[int] = set()  # partitions with a fetch in flight
        self.corr = self.generation = 0
        self._counts = dict.fromkeys(("produced", "acked", "fetched", "commits", "commits_acked",
                                      "out_of_range", "retried"), 0)

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    # --- the node's side -------------------------------------------------------------------------

    def restarted(self, node: Node) -> list[str]:
        """A new incarnation: a new registry reopens the stored topic (recovery has run on its logs),
        a new coordinator replays the offsets log."""
        self.node = node
        self.incarnation = node.incarnation
        if self.store is None:
            self.store = SimTopicStore(node.root / "streams", self.stream_factory)
            self.offsets_log = self.stream_factory(node.root / "__offsets", segment_bytes=SEGMENT_BYTES)
        assert self.offsets_log is not None
        self.topics = TopicRegistry(self.store, PARTITIONS, producers_from)
        self.topics.load()
        if self.topics.get(TOPIC) is None:
            code, why = self.topics.create(TOPIC, PARTITIONS, {"segment.bytes": str(SEGMENT_BYTES)})
            if code != errors.NONE:
                raise Violation(f"creating {TOPIC} failed with {code}: {why}")
        self.coordinator = Coordinator()
        self.offsets = OffsetsLog(self.offsets_log, node.clock)
        self.offsets.load(self.coordinator)
        self._check_acked("restart")
        out = []
        for p, lg in enumerate(self._topic().logs):
            got = self.coordinator.committed(GROUP, TOPIC, p)
            self.position[p] = got[0] if got else 0
            out.append(f"{TOPIC}-{p}: end {lg.next_offset}, committed {self.position[p]}")
        return out

    def _topic(self) -> Topic:
        assert self.topics is not None
        topic = self.topics.get(TOPIC)
        assert topic is not None
        return topic

    def crash(self, rng: random.Random) -> list[str]:
        self.front = None  # the connection dies with the node; requests in flight have no answer
        for pipe in (self.to_node, self.from_node):
            if pipe is not None:
                pipe.close()
        if self.store is None or self.offsets_log is None:
            return []
        return self.store.crash(rng) + stream_crash("__offsets", self.offsets_log, rng)

    def _check_acked(self, when: str) -> None:
        for p, lg in enumerate(self._topic().logs):
            if lg.next_offset < self.acked_end[p]:
                raise Violation(f"{TOPIC}-{p} ({when}): log ends at {lg.next_offset}, below acked "
                                f"offset {self.acked_end[p] - 1}")
            acked = self.acked[p]
            stored = read_all(lg)
            values = [v for _, v in stored]
            if len(set(values)) != len(values):
                twice = sorted({v for v in values if values.count(v) > 1}, key=str)[:3]
                raise Violation(f"{TOPIC}-{p} ({when}): record(s) stored twice (a retry appended again): "
                                f"{twice}")
            got = dict(stored)
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

        assert self.topics is not None
        front = wire.KafkaFront(self.topics, self.node.commit, self.from_node, alive)
        self.front = front
        self.responses = FrameBuffer(wire.MAX_FRAME)
        self.pending = {}
        self.fetching = set()
        retried = 0
        for p, batches in enumerate(self.unacked):  # an idempotent producer retries what has no ack
            for values, batch in batches:
                self._send(wire.produce_request(self.corr, TOPIC, p, batch), ("produce", p, values))
                retried += 1
        self._counts["retried"] += retried
        return f"kafka client connects (#{self.generation}), retries {retried} produce(s)"

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

    def _produce(self, rng: random.Random) -> str | None:
        assert self.node is not None
        p = rng.randrange(PARTITIONS)
        if len(self.unacked[p]) >= IN_FLIGHT_MAX:
            return None
        values = []
        for _ in range(rng.randint(1, 4)):
            self.seq += 1
            values.append(f"v{self.seq}|".encode() + b"y" * rng.choice((0, 30, 300)))
        batch = encode_batch([(None, v, ()) for v in values], self.node.clock.now_ms(),
                             producer_id=PRODUCER_ID, producer_epoch=PRODUCER_EPOCH,
                             base_sequence=self.next_sequence[p])
        self.next_sequence[p] += len(values)
        self.unacked[p].append((values, batch))
        self._send(wire.produce_request(self.corr, TOPIC, p, batch), ("produce", p, values))
        self._counts["produced"] += 1
        return f"produce {TOPIC}-{p} {len(values)} record(s) corr={self.corr - 1}"

    def _acked(self, p: int, base: int, values: list[bytes], code: int) -> None:
        if code != 0:
            raise Violation(f"{TOPIC}-{p}: produce answered error {code}")
        if not self.unacked[p] or self.unacked[p][0][0] != values:
            raise Violation(f"{TOPIC}-{p}: a produce ack out of order for the partition")
        del self.unacked[p][0]
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
        if code == errors.OFFSET_OUT_OF_RANGE and pos > hw:
            # A committed offset past the log's end: its commit's batch survived a power cut the
            # fetched (never acked) records did not. A client resets, here to the end (latest).
            self.position[p] = hw
            self._counts["out_of_range"] += 1
            self.lines.append(f"fetch {TOPIC}-{p} from {pos}: out of range (hw {hw}), reset to {hw}")
            return
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
        assert self.node is not None and self.topics is not None and self.offsets is not None
        p = rng.randrange(PARTITIONS)
        offset = self.position[p]
        out, lg = commit_offsets(self.coordinator, self.topics, self.offsets, GROUP, -1, "",
                                 [(TOPIC, [(p, offset, None)])])
        code = out[0]["partitions"][0]["error_code"]
        if code != errors.NONE:
            raise Violation(f"offset commit refused with {code} for a simple consumer")
        if lg is not None:
            self.node.commit.note_append(lg)
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
        if self.store is not None:
            self.store.close()
        if self.offsets_log is not None:
            self.offsets_log.log.close()
