"""A bare Kafka client over a raw socket and request builders, shared by the Kafka integration
tests (requests built with kio, responses read in order)."""

from __future__ import annotations

import io
import socket
import struct

from kio.index import load_request_schema, load_response_schema
from kio.serial import entity_reader, entity_writer

from ferrymq.protocols.kafka.entities import build


class Raw:
    """A bare Kafka client: header v1 requests built with kio, responses read in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.corr = 0

    def send(self, key: int, version: int, values: dict | bytes, flexible: bool | None = None) -> int:
        self.corr += 1
        body = (values if isinstance(values, bytes)
                else encode_values(load_request_schema(key, version), values))
        if flexible is None:
            flexible = not isinstance(values, bytes) and load_request_schema(key, version).__flexible__
        head = struct.pack(">hhih", key, version, self.corr, 3) + b"raw" + (b"\x00" if flexible else b"")
        self.sock.sendall(struct.pack(">i", len(head) + len(body)) + head + body)
        return self.corr

    def recv(self) -> tuple[int, bytes]:
        size = struct.unpack(">i", self._exact(4))[0]
        data = self._exact(size)
        return struct.unpack(">i", data[:4])[0], data[4:]

    def call(self, key: int, version: int, values: dict) -> object:
        corr = self.send(key, version, values)
        got, body = self.recv()
        assert got == corr
        cls = load_response_schema(key, version)
        if cls.__flexible__ and key != 18:
            body = body[1:]  # empty tagged fields of response header v1
        return entity_reader(cls)(body, 0)[0]

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionError:
            return True

    def close(self) -> None:
        self.sock.close()


def encode_values(cls: type, values: dict) -> bytes:
    buf = io.BytesIO()
    entity_writer(cls)(buf, build(cls, values))
    return buf.getvalue()


def produce(raw: Raw, topic: str, records: bytes, acks: int = -1, partition: int = 0) -> object:
    return raw.call(0, 8, {"transactional_id": None, "acks": acks, "timeout": 5000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": records}]}]})


def fetch_values(offset: int = 0, wait_ms: int = 0, topic: str = "t") -> dict:
    return {"replica_id": -1, "max_wait": wait_ms, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "topics": [{"topic": topic, "partitions": [
                {"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""}
