"""One AMQP client connection: bytes -> codec -> core, and core effects -> codec -> bytes.

This is the codec's handler. It writes nothing itself: the server flushes every connection's
output once per loop turn (``AMQPServer.flush``), so a burst of publishes costs one write.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import TYPE_CHECKING

from pamqp import commands
from pamqp.base import Frame

from ferrymq.core.channel import Channel
from ferrymq.core.message import Message
from ferrymq.errors import AccessRefused, ChannelStateError
from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.server.amqp import effects, methods
from ferrymq.server.tls import peer_common_name

if TYPE_CHECKING:
    from ferrymq.core.vhost import VHost
    from ferrymq.server.amqp.server import AMQPServer

log = logging.getLogger("ferrymq.amqp")


class AMQPConnection(asyncio.Protocol):
    def __init__(self, server: AMQPServer) -> None:
        self.server = server
        self.broker = server.broker
        s = server.settings
        self.codec = AMQPServerConnection(
            self, server.server_properties, frame_max=s.frame_max, channel_max=s.channel_max,
            heartbeat=s.heartbeat_s, message_max=s.message_max_bytes,
        )
        self.transport: asyncio.Transport | None = None
        self.channels: dict[int, Channel] = {}
        self.last_queue: dict[int, str] = {}
        self.vhost: VHost | None = None
        self.username = ""
        self.peer = "?"
        self.loopback = False
        self.cert_user: str | None = None  # a verified client certificate's CN (SASL EXTERNAL)
        self.tls = False  # over the AMQPS listener: output is joined before it is written
        self.last_recv_s = self.last_send_s = 0.0
        self.handshake_deadline_s = 0.0  # not open by then (connection.open-ok): dropped
        self.paused = False
        self.publishes = False  # has this connection published (flow control applies)?
        self.reading_paused_at: float | None = None
        self.pause_reasons: set[str] = set()  # "flow" (a queue is backed up), "alarm" (memory, disk)
        self.blocked_sent = False  # connection.blocked went out and unblocked has not
        # For the management API: RabbitMQ's connection name, wall-clock start, bytes in and out
        # (one addition per read and per write, never per message).
        self.name = "?"
        self.sockname: tuple[str, int] = ("?", 0)
        self.peername: tuple[str, int] = ("?", 0)
        self.connected_at = 0
        self.recv_oct = self.send_oct = 0

    # --- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        local = transport.get_extra_info("sockname")
        self.peername = (peer[0], peer[1]) if peer else ("?", 0)
        self.sockname = (local[0], local[1]) if local else ("?", 0)
        self.name = f"{self.peer} -> {self.sockname[0]}:{self.sockname[1]}"
        self.connected_at = self.broker.clock.now_ms()
        self.loopback = _is_loopback(peer[0] if peer else "")
        self.tls = transport.get_extra_info("sslcontext") is not None
        self.cert_user = peer_common_name(transport)
        if self.cert_user is not None:  # as rabbitmq_auth_mechanism_ssl: EXTERNAL only with a cert
            self.codec.mechanisms = ("EXTERNAL", *self.codec.mechanisms)
        transport.set_write_buffer_limits(self.server.output_high_water,  # type: ignore[attr-defined]
                                          self.server.output_low_water)
        self.last_recv_s = self.last_send_s = self.server.loop.time()
        self.handshake_deadline_s = self.last_recv_s + self.server.settings.handshake_timeout_ms / 1000
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_recv_s = self.server.loop.time()
        self.recv_oct += len(data)
        self.broker.turn.ms = self.broker.clock.monotonic_ms()  # enqueue stamp for this read
        self.codec.receive_data(data)
        if self.publishes:
            if self.broker.overloaded:
                self.server.throttle(self)
            if self.server.alarm and "alarm" not in self.pause_reasons:
                self.block(self.server.alarm_reason)  # a publisher that came in during the alarm
        self.server.want_flush(self)

    def pause_reading(self, reason: str) -> bool:
        """Stop reading for ``reason``. Flow control pauses only connections that publish and
        consume nothing, so a connection whose own acks would drain the queue cannot deadlock."""
        if self.transport is None or reason in self.pause_reasons:
            return False
        if reason == "flow" and any(ch.consumers for ch in self.channels.values()):
            return False
        if not self.pause_reasons:
            self.transport.pause_reading()
            self.reading_paused_at = self.server.loop.time()
        self.pause_reasons.add(reason)
        return True

    def resume_reading(self, reason: str) -> None:
        if reason not in self.pause_reasons:
            return
        self.pause_reasons.discard(reason)
        if not self.pause_reasons and self.transport is not None:
            self.reading_paused_at = None
            if not self.transport.is_closing():
                self.transport.resume_reading()

    # --- memory alarm (connection.blocked) -----------------------------------------------------

    def block(self, reason: str) -> None:
        """The memory alarm went off: tell clients that asked (connection.blocked) and stop
        reading from connections that publish, as RabbitMQ does."""
        caps = self.codec.client_properties.get("capabilities") or {}
        if caps.get("connection.blocked") and not self.codec.closed and not self.blocked_sent:
            self.codec.send_method(0, commands.Connection.Blocked(reason))
            self.blocked_sent = True
            self.server.want_flush(self)
        if self.publishes:
            self.pause_reading("alarm")

    def unblock(self) -> None:
        if self.blocked_sent and not self.codec.closed:
            self.codec.send_method(0, commands.Connection.Unblocked())
            self.server.want_flush(self)
        self.blocked_sent = False
        self.resume_reading("alarm")

    def connection_lost(self, exc: Exception | None) -> None:
        self._teardown()
        self.server.connections.discard(self)

    def pause_writing(self) -> None:
        """The client reads slower than we deliver: stop delivering to it, as RabbitMQ does."""
        self.paused = True
        for ch in self.channels.values():
            ch.deliverable = False

    def resume_writing(self) -> None:
        self.paused = False
        for ch in list(self.channels.values()):
            ch.set_deliverable(True)
        self.server.want_flush(self)

    # --- codec handler: connection ---------------------------------------------------------

    def authenticate(self, username: str, password: str, mechanism: str) -> None:
        if mechanism == "EXTERNAL":  # the client certificate's common name is the user name
            username = self.cert_user or ""
        try:
            if mechanism == "EXTERNAL":
                self.broker.authenticate_external(username, loopback=self.loopback)
            else:
                self.broker.authenticate(username, password, loopback=self.loopback)
        except AccessRefused:
            log.warning("login refused for user %r from %s (%s)", username, self.peer, mechanism)
            raise
        self.username = username

    def open_vhost(self, vhost: str) -> None:
        """connection.open: RabbitMQ checks the vhost's and the user's connection limits first."""
        limits, user = self.broker.limits, self.username
        if limits.wants("vhost", vhost, "max-connections"):
            limits.check_vhost_connections(vhost, user, sum(
                1 for c in self.server.connections if c.vhost is not None and c.vhost.name == vhost))
        if limits.wants("user", user, "max-connections"):
            limits.check_user_connections(user, sum(
                1 for c in self.server.connections if c.vhost is not None and c.username == user))
        self.vhost = self.broker.open_vhost(vhost, self.username)

    def on_connection_closed(self) -> None:
        self._teardown()

    def _teardown(self) -> None:
        for number in list(self.channels):
            self.on_channel_closed(number)
        self.broker.connection_closed(self)

    # --- codec handler: channels -----------------------------------------------------------

    def on_channel_open(self, channel: int) -> None:
        assert self.vhost is not None
        if self.broker.limits.wants("user", self.username, "max-channels"):
            self.broker.limits.check_user_channels(self.username, sum(
                len(c.channels) for c in self.server.connections if c.username == self.username))
        ch = self.broker.open_channel(self.vhost, channel, self, self.username, enforce=True)
        ch.deliverable = not self.paused
        self.channels[channel] = ch

    def on_channel_closed(self, channel: int) -> None:
        ch = self.channels.pop(channel, None)
        self.last_queue.pop(channel, None)
        if ch is not None:
            self.broker.close_channel(ch)

    def on_flow(self, channel: int, active: bool) -> None:
        self._channel(channel).set_deliverable(active and not self.paused)

    def _channel(self, number: int) -> Channel:
        ch = self.channels.get(number)
        if ch is None:
            raise ChannelStateError(f"expected 'channel.open' on channel {number}")
        return ch

    # --- codec handler: hot path -----------------------------------------------------------

    def on_publish(
        self, channel: int, exchange: str, routing_key: str, mandatory: bool, message: Message
    ) -> None:
        self.publishes = True
        self.channels[channel].publish(exchange, routing_key, mandatory, message)

    def on_ack(self, channel: int, delivery_tag: int, multiple: bool) -> None:
        self.channels[channel].ack(delivery_tag, multiple)

    def on_nack(self, channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> None:
        self.channels[channel].nack(delivery_tag, multiple, requeue)

    def on_reject(self, channel: int, delivery_tag: int, requeue: bool) -> None:
        self.channels[channel].reject(delivery_tag, requeue)

    def on_method(self, channel: int, method: Frame) -> None:
        methods.dispatch(self, self._channel(channel), method)

    # --- effects -> frames ---------------------------------------------------------------

    def drain(self, ch: Channel) -> None:
        """Encode a channel's pending effects (ferrymq.server.amqp.effects, shared with the sim)."""
        effects.drain(self, ch)

    def write_out(self) -> None:
        out = self.codec.outbox
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            if self.tls:  # the TLS transport seals each piece of a writelines as a record of its own
                transport.write(b"".join(out))
            else:
                transport.writelines(out)
            self.send_oct += sum(map(len, out))
            self.last_send_s = self.server.loop.time()
        out.clear()
        if self.codec.closed and transport is not None:
            transport.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host in ("", "localhost")
