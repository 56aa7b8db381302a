"""The Kafka listener: its lifecycle, its connections, dispatch by API key, and its part of each
loop turn (the shared commit pipeline ends the turn: this front end answers the fetches the turn's
appends woke, then writes every connection's answered responses once).

Requests are handled as their bytes arrive: Produce appends with one pwrite per partition and its
response waits in the commit pipeline for the fsync that covers it; each API family is a handler
object of its own (produce, fetch, groups, admin, SASL), given only the collaborators it needs.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

from ferrymq.config import Settings
from ferrymq.core.broker import Broker
from ferrymq.core.clock import Clock
from ferrymq.core.groups import Coordinator
from ferrymq.core.topics import TopicRegistry
from ferrymq.protocols.kafka import errors, offsets, versions
from ferrymq.protocols.kafka.header import parse_header
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.kafka import preauth
from ferrymq.server.kafka.acls import AclApis
from ferrymq.server.kafka.admin_cluster import ClusterApis
from ferrymq.server.kafka.admin_configs import ConfigApis
from ferrymq.server.kafka.admin_groups import GroupAdminApis
from ferrymq.server.kafka.admin_records import RecordApis
from ferrymq.server.kafka.admin_replicas import ReplicaApis
from ferrymq.server.kafka.apis import KafkaApis
from ferrymq.server.kafka.authz import KafkaAuthorizer
from ferrymq.server.kafka.authz_admin import guard_admin
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.fetch import FetchApi
from ferrymq.server.kafka.groups import GroupApis
from ferrymq.server.kafka.handlers import Handler
from ferrymq.server.kafka.produce import ProduceApi
from ferrymq.server.kafka.sasl import SaslApis
from ferrymq.server.kafka.scram_admin import ScramAdminApis
from ferrymq.server.kafka.transactions import TransactionApis
from ferrymq.server.tls import create_server
from ferrymq.storage.stream_log import StreamLog

log = logging.getLogger("ferrymq.kafka")


class KafkaServer:
    def __init__(self, settings: Settings, topics: TopicRegistry, commit: CommitPipeline, clock: Clock,
                 offsets_path: Path, broker: Broker) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.connections: set[KafkaConnection] = set()
        self.port = 0
        self.coordinator = Coordinator(id_prefix=f"{clock.now_ms() % 10**9:x}-")
        self.offsets = offsets.OffsetsLog(StreamLog(offsets_path, segment_bytes=offsets.SEGMENT_BYTES), clock)
        topics.register_internal(offsets.OFFSETS_TOPIC, self.offsets.log, offsets.OFFSETS_TOPIC_CONFIGS)
        self.fetches = FetchApi(topics, self.loop, commit.request_turn_end)
        self.groups = GroupApis(self.coordinator, self.offsets, topics, commit, clock, self.loop)
        self.sasl = SaslApis(broker, self.loop)
        self.broker = broker
        self.authz = KafkaAuthorizer(broker)
        self.apis = KafkaApis(topics, clock, self.fetches.forget_topic, self.authz)
        self.txns = TransactionApis(topics, self.coordinator, self.offsets, commit, clock, self.loop,
                                    self.apis.new_producer_id, offsets_path.with_name("stream-txns"))
        self.producer = ProduceApi(topics, commit, self.txns.coordinator, self.authz)
        self.handlers: dict[int, Handler] = {
            versions.PRODUCE: self.producer.produce,
            versions.FETCH: self.fetch, **self.apis.handlers(),
            **self.authz.guard_groups(self.groups.handlers()),
            **self.txns.handlers(), **self.sasl.handlers(), **self._admin_handlers(topics, commit)}
        self.commit = commit
        self._to_flush: set[KafkaConnection] = set()
        self._servers: list[asyncio.Server] = []
        commit.attach(self)

    def _admin_handlers(self, topics: TopicRegistry, commit: CommitPipeline) -> dict[int, Handler]:
        """The admin APIs tools call (configs, records, groups, cluster, ACLs), one module each."""
        log_dir = Path(getattr(topics.store, "root", self.settings.data_dir or "."))
        return guard_admin(self.authz, {
            **ConfigApis(topics).handlers(), **RecordApis(topics).handlers(),
            **GroupAdminApis(self.coordinator, self.offsets, commit).handlers(),
            **ClusterApis(topics, log_dir).handlers(), **AclApis(self.broker, self.authz).handlers(),
            **ScramAdminApis(self.broker, self.authz).handlers(),
            **ReplicaApis(topics, log_dir, self.authz).handlers()})

    def load(self) -> int:
        """Replay the committed offsets into the coordinator, then the transactions' states (which
        may commit offsets a restart caught half done); returns how many offsets."""
        restored = self.offsets.load(self.coordinator)
        self.txns.load()
        return restored

    async def start(self, host: str, port: int) -> int:
        server = await create_server(lambda: KafkaConnection(self), host, port, None, "Kafka")
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        self.groups.start()
        self.txns.start()
        return self.port

    async def start_tls(self, host: str, port: int, ctx: ssl.SSLContext) -> int:
        """Kafka's SSL listener (and SASL_SSL: a client may authenticate with SASL PLAIN inside the
        TLS session, as on the plain port); opened after ``start``."""
        server = await create_server(lambda: KafkaConnection(self), host, port, ctx, "Kafka SSL")
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, conn: KafkaConnection, frame: memoryview) -> None:
        if conn.sasl_raw:
            self.sasl.sasl_raw_token(conn, bytes(frame))
            return
        header, reader = parse_header(frame, versions.flexible)
        key, version = header.api_key, header.api_version
        conn.peer_client_id = header.client_id or ""
        if preauth.refused(conn, key):  # while SASL is under way only SASL may be spoken
            return
        slot = conn.new_slot(key, version, header.correlation_id, versions.flexible(key, version))
        if key == versions.API_VERSIONS:
            self.apis.api_versions(conn, slot, reader)
            return
        if not versions.supported(key, version):
            conn.abort(str(errors.UnsupportedVersion(key, version)))
            return
        self.handlers[key](conn, slot, (header, reader))

    def fetch(self, conn: KafkaConnection, slot: Slot, ctx: tuple[object, object]) -> None:
        """Fetch behind the read permission (checked only for users whose read is not ``.*``)."""
        if not self.authz.refuse_fetch(conn, slot, ctx):  # type: ignore[arg-type]
            self.fetches.fetch(conn, slot, ctx)

    # --- this front end's part of the loop turn ------------------------------------------------

    def want_flush(self, conn: KafkaConnection | None = None) -> None:
        if conn is not None:
            self._to_flush.add(conn)
        self.commit.request_turn_end()

    def drain(self) -> None:
        """The turn's first step: parked fetches the turn's appends can satisfy answer now."""
        self.fetches.complete_woken()

    def write_out(self) -> None:
        """The turn's last step: every connection's answered responses in one write each."""
        to_flush, self._to_flush = self._to_flush, set()
        for conn in to_flush:
            if not conn.closed:
                conn.write_out()

    def forget(self, conn: KafkaConnection) -> None:
        self.fetches.forget(conn)

    # --- shutdown ------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop listening and the group timer; the offsets log stays open for the final commit."""
        self.groups.stop()
        self.txns.stop()
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.abort("broker shutting down")
        for server in self._servers:
            await server.wait_closed()

    def close(self) -> None:
        """Close the offsets and transaction logs (after the pipeline's final commit)."""
        self.offsets.close()
        self.txns.close()
