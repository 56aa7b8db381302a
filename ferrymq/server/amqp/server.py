"""The AMQP listener and the per-loop-turn machinery: flush, timers, heartbeats, shutdown."""

from __future__ import annotations

import asyncio
import logging
import platform
import ssl
from collections.abc import Callable

from ferrymq import __version__, limits
from ferrymq.config import Settings
from ferrymq.core.broker import Broker
from ferrymq.core.channel import Channel
from ferrymq.core.stats import loop_lag
from ferrymq.core.watermark import Watermark
from ferrymq.errors import CONNECTION_FORCED
from ferrymq.protocols.amqp.server_properties import server_properties
from ferrymq.server.amqp.connection import AMQPConnection
from ferrymq.server.commit import CommitPipeline
from ferrymq.server.durability import Durability
from ferrymq.server.memory import MemoryMonitor
from ferrymq.server.tls import create_server

log = logging.getLogger("ferrymq.server")

TIMER_MAX_SLEEP_S = 0.25  # heartbeats and the memory alarm are checked at least this often


class AMQPServer:
    def __init__(self, broker: Broker, settings: Settings, commit: CommitPipeline,
                 durability: Durability | None = None) -> None:
        self.broker = broker
        self.commit = commit
        self.durability = durability
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.connections: set[AMQPConnection] = set()
        self.server_properties = server_properties(
            product=settings.amqp_product,
            version=settings.amqp_version,
            platform=f"FerryMQ {__version__} on Python {platform.python_version()}",
        )
        self.output_high_water = limits.OUTPUT_HIGH_WATER_BYTES
        self.output_low_water = limits.OUTPUT_LOW_WATER_BYTES
        self._to_flush: set[AMQPConnection] = set()
        self._active = False  # this turn drained channels or has output (else write_out is a no-op)
        self._throttled: set[AMQPConnection] = set()
        self.alarm = False  # a resource alarm is on: publishers are blocked
        self.alarms: set[str] = set()  # "memory" (queued bodies above the watermark), "disk"
        self.alarm_reason = ""
        self.memory = MemoryMonitor(settings.vm_memory_high_watermark)
        self._servers: list[asyncio.Server] = []
        self._timer: asyncio.TimerHandle | asyncio.Handle | None = None
        self.port = 0
        self.loop_lag = loop_lag()  # ms the lag probe fired late (event-loop stalls)
        self.loop_lag_max_ms = 0
        self._probe: asyncio.TimerHandle | None = None
        self._probe_due_ms = 0
        commit.attach(self)

    async def start(self, host: str, port: int) -> int:
        server = await create_server(lambda: AMQPConnection(self), host, port, None, "AMQP")
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        self._arm_timer()
        self._arm_probe()
        return self.port

    async def start_tls(self, host: str, port: int, ctx: ssl.SSLContext) -> int:
        """The AMQPS listener: the same connections, behind a TLS handshake (after ``start``)."""
        server = await create_server(lambda: AMQPConnection(self), host, port, ctx, "AMQPS")
        self._servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    # --- flush once per loop turn ----------------------------------------------------------

    def want_flush(self, conn: AMQPConnection) -> None:
        self._to_flush.add(conn)
        self.commit.request_turn_end()

    def schedule_flush(self) -> None:
        self.commit.request_turn_end()

    def flush(self) -> None:
        """End the loop turn now (shutdown): drain, write and commit, write out."""
        self.commit.run_turn()

    def drain(self) -> None:
        """The turn's first step: channels' effects into frames (confirms held in the pipeline)."""
        broker = self.broker
        to_flush = self._to_flush
        self._active = bool(to_flush) or bool(broker.dirty)
        if broker.tracer.awaiting_store:
            self._trace_stored()
        while broker.dirty:
            dirty, broker.dirty = broker.dirty, []
            for ch in dirty:
                ch.dirty = False
                conn = ch.connection
                if isinstance(conn, AMQPConnection):
                    conn.drain(ch)
                    to_flush.add(conn)
                else:  # another front end's channel (SQS, push): a ChannelOwner takes its effects
                    drain = getattr(conn, "drain_channel", None)  # isinstance on a Protocol: 8 % CPU
                    if drain is not None:
                        drain(ch)
                    else:  # an owner that wants no effects (a health check): nothing may pile up
                        ch.outbox.clear()

    def write_out(self) -> None:
        """The turn's last step, after the writes: every connection's frames in one write each."""
        active = self._active or bool(self._to_flush)
        to_flush, self._to_flush = self._to_flush, set()
        for conn in to_flush:
            conn.write_out()
        if self._throttled:
            self._release_throttled()
        if active:  # else a turn of another front end only: no new deadlines here
            self._arm_timer()

    def hold(self, conn: AMQPConnection, ch: Channel, send: Callable[[bool], None]) -> None:
        """Confirms and tx.commit-ok wait in the commit pipeline; sent only if the channel is still
        open when the commit covering them returns (``stored`` False if it failed)."""
        def release(stored: bool) -> None:
            if conn.channels.get(ch.number) is ch and not conn.codec.closed:
                send(stored)
                self.want_flush(conn)
        self.commit.hold(release)

    # --- flow control ----------------------------------------------------------------------

    def throttle(self, conn: AMQPConnection) -> None:
        if conn.pause_reading("flow"):
            self._throttled.add(conn)
            self.loop.call_later(limits.FLOW_PAUSE_MAX_MS / 1000, self._release_throttled)

    def _release_throttled(self) -> None:
        """Resume publishers once queues drained, or when their pause has lasted long enough."""
        if not self._throttled:
            return
        relieved = self.broker.relieved()
        oldest_ok = self.loop.time() - limits.FLOW_PAUSE_MAX_MS / 1000
        for conn in list(self._throttled):
            paused_at = conn.reading_paused_at
            if relieved or paused_at is None or paused_at <= oldest_ok:
                self._throttled.discard(conn)
                conn.resume_reading("flow")

    def _trace_stored(self) -> None:
        """Traced persistent messages of this turn are 'stored' once the commit covering it returns."""
        tracer, commit = self.broker.tracer, self.commit
        waiting, tracer.awaiting_store = tracer.awaiting_store, []

        commit.hold(lambda ok: tracer.stored(waiting, ok, commit.counters["commits"]))

    # --- the event-loop lag probe ------------------------------------------------------------

    def _arm_probe(self) -> None:
        self._probe_due_ms = self.broker.clock.monotonic_ms() + limits.LOOP_LAG_PROBE_MS
        self._probe = self.loop.call_later(limits.LOOP_LAG_PROBE_MS / 1000, self._on_probe)

    def _on_probe(self) -> None:
        """How late this timer fired is how long the loop was busy elsewhere (a stall)."""
        lag = max(0, self.broker.clock.monotonic_ms() - self._probe_due_ms)
        self.loop_lag.observe(lag)
        self.loop_lag_max_ms = max(self.loop_lag_max_ms, lag)
        self._arm_probe()

    # --- timers ----------------------------------------------------------------------------

    def _arm_timer(self) -> None:
        deadline = self.broker.next_deadline_ms()
        delay = TIMER_MAX_SLEEP_S
        if deadline is not None:
            now = self.broker.clock.monotonic_ms()
            delay = min(delay, max(0.0, (deadline - now) / 1000))
        when = self.loop.time() + delay
        if self._timer is not None:
            # uvloop's call_at of a time already past returns a plain Handle (no when()): due now
            due = self._timer.when() if isinstance(self._timer, asyncio.TimerHandle) else 0.0
            if due <= when:
                return
            self._timer.cancel()
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.broker.tick()
        self._heartbeats()
        self._check_alarms()
        self.commit.retry_writes()
        if self.broker.dirty:
            self.commit.request_turn_end()
        self._arm_timer()

    def _heartbeats(self) -> None:
        now = self.loop.time()
        for conn in list(self.connections):
            if conn.vhost is None and now > conn.handshake_deadline_s and conn.transport is not None:
                log.warning("closing AMQP connection from %s: handshake_timeout", conn.peer)
                conn.transport.abort()  # as RabbitMQ: no close frame to a peer that never opened
                continue
            hb = conn.codec.heartbeat
            if not hb or conn.codec.closed:
                continue
            if now - conn.last_recv_s > 2 * hb:
                log.warning("missed heartbeats from client %s, closing", conn.peer)
                if conn.transport is not None:
                    conn.transport.abort()
                continue
            if now - conn.last_send_s >= hb / 2:
                conn.codec.send_heartbeat()
                self.want_flush(conn)

    def _check_alarms(self, force: bool = False) -> None:
        """RabbitMQ's resource alarms: memory (the process's RSS above vm_memory_high_watermark, or
        queued bodies above memory_high_watermark_bytes) and free disk."""
        queued = sum(q.ready_bytes for v in self.broker.vhosts.values() for q in v.queues.values())
        memory = self.memory
        used = memory.sample(self.broker.clock.monotonic_ms(), queued, force)
        self._set_alarm("memory", memory.over() or queued > self.settings.memory_high_watermark_bytes,
                        f"{used} bytes used (limit {memory.limit_bytes}), {queued} bytes queued")
        if self.durability is not None:
            self._set_alarm("disk", self.durability.disk_low(), "free disk below the limit")

    def set_memory_watermark(self, watermark: Watermark) -> None:
        """``rabbitmqctl set_vm_memory_high_watermark``: the new limit is checked at once, so raising
        it clears the alarm (and lowering it raises one) without waiting for the next reading."""
        self.memory.watermark = watermark
        self._check_alarms(force=True)

    def _set_alarm(self, kind: str, on: bool, why: str) -> None:
        if on == (kind in self.alarms):
            return
        was = self.alarm
        if on:
            self.alarms.add(kind)
            log.warning("%s alarm: %s; blocking publishers", kind, why)
        else:
            self.alarms.discard(kind)
            log.warning("%s alarm cleared", kind)
        self.alarm = bool(self.alarms)
        self.alarm_reason = f"low on {min(self.alarms)}" if self.alarms else ""
        if self.alarm and not was:
            for conn in list(self.connections):
                conn.block(f"low on {kind}")
        elif was and not self.alarm:
            for conn in list(self.connections):
                conn.unblock()

    # --- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        """Refuse new connections, tell every client 320 CONNECTION_FORCED, as RabbitMQ does."""
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            if conn.transport is not None and not conn.codec.closed:
                conn.codec.close_connection(
                    CONNECTION_FORCED, "CONNECTION_FORCED - broker forced connection closure "
                    "with reason 'shutdown'", 0, 0)
                conn.write_out()
        if self._timer is not None:
            self._timer.cancel()
        if self._probe is not None:
            self._probe.cancel()
        await asyncio.sleep(0.05)
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        await asyncio.sleep(0)  # connection_lost runs: unacked deliveries are requeued
        self.flush()  # ... and their records written before the stores close
