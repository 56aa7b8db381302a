"""Produce and Fetch over the simulated network, through the project's Kafka codecs.

Node side (real): ``FrameBuffer`` (framing), ``parse_header``, ``decode_produce`` /
``encode_produce_response``, ``decode_fetch`` / ``encode_fetch_response``, ``frame_response``, and
between them the server's own produce and fetch paths (``ferrymq.protocols.kafka.partitions``) over
the core's ``TopicRegistry``. Responses leave in request order, as Kafka requires: each request
takes a slot, a produce's slot is filled when the commit covering its append returns, and only the
filled prefix is written.

Client side (the sim's own, since the project has no Kafka client codec): the Produce v8 and Fetch v11
request encoders and response decoders below, written from Kafka's protocol schemas, on the
project's wire primitives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ferrymq.protocols.kafka import partitions, versions
from ferrymq.protocols.kafka.fetch import decode_fetch, encode_fetch_response
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.header import frame_response, parse_header
from ferrymq.protocols.kafka.primitives import I16, I32, I64, Reader, nullable_string, string
from ferrymq.protocols.kafka.produce import decode_produce, encode_produce_response
from ferrymq.sim.network import Pipe

if TYPE_CHECKING:
    from ferrymq.core.topics import TopicRegistry
    from ferrymq.sim.commit import SimCommit

PRODUCE_V, FETCH_V = 8, 11
MAX_FRAME = 1 << 20
FETCH_BYTES = 64 * 1024


class KafkaFront:
    """One client connection on the node: the server's produce and fetch paths
    (ferrymq.protocols.kafka.partitions) over the core's topic registry, without the event loop."""

    def __init__(self, topics: TopicRegistry, commit: SimCommit, out: Pipe,
                 alive: Callable[[], bool]) -> None:
        self.topics, self.commit, self.out, self.alive = topics, commit, out, alive
        self.frames = FrameBuffer(MAX_FRAME)
        self.slots: dict[int, bytes | None] = {}  # request number -> its response once ready (None: none)
        self.next_slot = self.next_write = 0

    def receive(self, data: bytes) -> None:
        self.frames.receive_data(data)
        for frame in self.frames.frames():
            head, r = parse_header(frame, versions.flexible)
            slot = self.next_slot
            self.next_slot += 1
            if head.api_key == versions.PRODUCE:
                self._produce(head.correlation_id, head.api_version, r, slot)
            elif head.api_key == versions.FETCH:
                self._fetch(head.correlation_id, head.api_version, r, slot)
            else:
                raise AssertionError(f"the sim's client sent api {head.api_key}")

    def _produce(self, corr: int, version: int, r: Reader, slot: int) -> None:
        req = decode_produce(r, version)
        results = partitions.produce(self.topics, req, self.commit)
        if req.acks == 0:
            self.slots[slot] = None
            return

        def send(stored: bool) -> None:
            if not stored:
                partitions.fail_unstored(results)
            self.slots[slot] = frame_response(corr, encode_produce_response(version, results), False, 0)

        self.commit.hold(self.alive, send)

    def _fetch(self, corr: int, version: int, r: Reader, slot: int) -> None:
        req = decode_fetch(r, version)
        out, _size, _failed = partitions.gather(self.topics, req)  # the sim's fetches never wait
        body = b"".join(encode_fetch_response(version, out))
        self.slots[slot] = frame_response(corr, body, False, 1)

    def write_out(self) -> None:
        while self.next_write in self.slots:
            response = self.slots.pop(self.next_write)
            if response is not None:
                self.out.write(response)
            self.next_write += 1


# --- the sim's client codec ------------------------------------------------------------------------


def _request(api_key: int, version: int, corr: int, body: bytes) -> bytes:
    head = I16.pack(api_key) + I16.pack(version) + I32.pack(corr) + nullable_string("sim")
    return I32.pack(len(head) + len(body)) + head + body


def produce_request(corr: int, topic: str, partition: int, batch: bytes) -> bytes:
    body = b"".join((
        nullable_string(None), I16.pack(-1), I32.pack(30_000), I32.pack(1), string(topic), I32.pack(1),
        I32.pack(partition), I32.pack(len(batch)), batch,
    ))
    return _request(versions.PRODUCE, PRODUCE_V, corr, body)


def fetch_request(corr: int, topic: str, partition: int, offset: int) -> bytes:
    body = b"".join((
        I32.pack(-1), I32.pack(0), I32.pack(0), I32.pack(MAX_FRAME), b"\x00", I32.pack(0), I32.pack(-1),
        I32.pack(1), string(topic), I32.pack(1),
        I32.pack(partition), I32.pack(-1), I64.pack(offset), I64.pack(-1), I32.pack(FETCH_BYTES),
        I32.pack(0), string(""),
    ))
    return _request(versions.FETCH, FETCH_V, corr, body)


def read_produce_response(r: Reader) -> tuple[int, int]:
    """(error code, base offset) of the one partition asked."""
    r.i32(), r.string(), r.i32(), r.i32()  # topics, name, partitions, partition index
    code, base = r.i16(), r.i64()
    return code, base


def read_fetch_response(r: Reader) -> tuple[int, int, bytes]:
    """(error code, high watermark, record bytes) of the one partition asked."""
    r.i32(), r.i16(), r.i32()  # throttle, error, session
    r.i32(), r.string(), r.i32(), r.i32()  # topics, name, partitions, partition index
    code, hw = r.i16(), r.i64()
    r.i64(), r.i64(), r.i32(), r.i32()  # last stable, log start, aborted (null), preferred replica
    records = r.nullable_bytes() or b""
    return code, hw, records
