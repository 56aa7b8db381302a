"""One Kafka client connection: an asyncio Protocol that cuts frames, hands each request to the
handlers, and writes responses strictly in request order, once per loop turn.

Why slots: a Produce may wait for its fsync, a Fetch for data, a JoinGroup for the other members,
while later requests on the same connection are already answered; Kafka clients match responses to
requests by order as much as by correlation id, so each request takes a slot in a queue and output
leaves only from its head.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from ferrymq import limits
from ferrymq.protocols.kafka.errors import KafkaProtocolError
from ferrymq.protocols.kafka.framing import FrameBuffer
from ferrymq.protocols.kafka.header import frame_response
from ferrymq.server.peers import is_loopback

if TYPE_CHECKING:
    from ferrymq.server.kafka.server import KafkaServer

log = logging.getLogger("ferrymq.kafka")


class Slot:
    """A request's place in its connection's response order. Hashable by identity (a group token)."""

    __slots__ = ("api_key", "conn", "correlation_id", "flexible", "parts", "state", "version")

    def __init__(self, conn: KafkaConnection, api_key: int, version: int, correlation_id: int,
                 flexible: bool) -> None:
        self.conn = conn
        self.api_key = api_key
        self.version = version
        self.correlation_id = correlation_id
        self.flexible = flexible
        self.parts: list[bytes] | None = None
        self.state = 0  # 0 waiting, 1 answered, 2 no response (acks=0)

    def reply(self, body: bytes | list[bytes]) -> None:
        if self.state:
            return
        parts = body if isinstance(body, list) else [body]
        head = frame_response(self.correlation_id, b"", self.flexible, self.api_key)
        size = int.from_bytes(head[:4], "big") + sum(len(p) for p in parts)
        self.parts = [size.to_bytes(4, "big") + head[4:], *parts]
        self.state = 1
        self.conn.server.want_flush(self.conn)

    def drop(self) -> None:
        self.state = 2
        self.conn.server.want_flush(self.conn)


class KafkaConnection(asyncio.Protocol):
    def __init__(self, server: KafkaServer) -> None:
        self.server = server
        self.frames = FrameBuffer(limits.KAFKA_REQUEST_MAX_BYTES)
        self.slots: deque[Slot] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.local_host = server.settings.host
        self.local_port = 0  # the listener this client reached (plain or SSL): Metadata advertises it
        self.peer_host = ""
        self.peer_client_id = ""
        self.sasl_raw = False  # after SaslHandshake v0 the next frame is a bare SASL token
        self.authenticated_as: str | None = None
        self.sasl_mechanism = ""  # chosen by SaslHandshake
        self.sasl_exchange: Any = None  # a multi-round mechanism's state (SCRAM), while it runs
        self.tls = False  # over the SSL listener: output is joined before it is written

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        self.tls = transport.get_extra_info("sslcontext") is not None
        sock = transport.get_extra_info("sockname")
        peer = transport.get_extra_info("peername")
        if sock:
            self.local_host, self.local_port = sock[0], sock[1]
        if peer:
            self.peer_host = peer[0]
        self.server.connections.add(self)

    @property
    def loopback(self) -> bool:
        """Whether the client connected from this host: the broker's loopback-only users' rule."""
        return is_loopback(self.peer_host)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self.server.forget(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self.frames.receive_data(data)
            for frame in self.frames.frames():
                self.server.handle(self, frame)
                if self.closed:
                    return
        except KafkaProtocolError as exc:
            self.abort(str(exc))
        except Exception:
            log.exception("internal error handling a Kafka request: closing the connection")
            self.abort("internal error")

    def abort(self, why: str) -> None:
        """A malformed request closes this connection only."""
        if not self.closed:
            log.info("closing Kafka connection from %s: %s", self.peer_host, why)
            self.closed = True
            if self.transport is not None:
                self.transport.close()

    def new_slot(self, api_key: int, version: int, correlation_id: int, flexible: bool) -> Slot:
        slot = Slot(self, api_key, version, correlation_id, flexible)
        self.slots.append(slot)
        return slot

    def write_out(self) -> None:
        """Send every answered response at the head of the queue, in one writelines call."""
        out: list[bytes] = []
        slots = self.slots
        while slots and slots[0].state:
            slot = slots.popleft()
            if slot.parts:
                out.extend(slot.parts)
        if out and self.transport is not None and not self.closed:
            if self.tls:  # the TLS transport seals each piece of a writelines as a record of its own
                self.transport.write(b"".join(out))
            else:
                self.transport.writelines(out)
