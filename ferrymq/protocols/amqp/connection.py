"""The server side of one AMQP 0-9-1 connection, sans-IO.

Bytes go in with ``receive_data``: every complete frame is parsed in one pass over the input and
handed to the handler (the hot methods as plain values, the rest as pamqp objects). Replies and
deliveries are appended to ``outbox``; the shell writes it once per loop turn and closes the
socket once ``closed`` is set and the outbox is flushed. Bad input never raises: it becomes
channel.close or connection.close with RabbitMQ's code and text.

The handshake (start, start-ok, tune, tune-ok, open) and the connection and channel state
machines live here; their legal moves are the tables in ``states``.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq import limits
from ferrymq.core.message import Message
from ferrymq.core.properties import EMPTY_PROPERTIES
from ferrymq.errors import (
    ACCESS_REFUSED,
    INTERNAL_ERROR,
    NOT_ALLOWED,
    ChannelStateError,
    CommandInvalid,
    FrameError,
    NotAllowed,
    NotImplemented_,
    PreconditionFailed,
    ProtocolError,
    UnexpectedFrame,
)
from ferrymq.protocols.amqp import hotpath
from ferrymq.protocols.amqp.auth import credentials
from ferrymq.protocols.amqp.frames import (
    BASIC_ACK,
    BASIC_CLASS,
    BASIC_PUBLISH,
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_HEADER_SIZE,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    FRAME_OVERHEAD_BYTES,
    FRAME_SIZE_FUDGE_BYTES,
    HEARTBEAT_FRAME,
    METHOD_ID,
    PROTOCOL_HEADER,
    LostSync,
    frame,
    max_payload,
    snippet,
    split_method_id,
)
from ferrymq.protocols.amqp.handler import ConnectionHandler
from ferrymq.protocols.amqp.methods import MethodDecodeError, decode_method, encode_method, method_class
from ferrymq.protocols.amqp.properties import (
    EMPTY_RAW_PROPERTIES,
    INTERNED_PROPERTIES,
    intern_properties,
)
from ferrymq.protocols.amqp.states import (
    AWAITING_HEADER,
    CH_BODY,
    CH_CLOSING,
    CH_HEADER,
    CH_OPEN,
    CHANNEL_TABLE,
    CLOSED,
    CLOSING,
    CONNECTION_TABLE,
    OPENING,
    RUNNING,
    STARTING,
    STATE_NAMES,
    TUNING,
)

_HEAD = FRAME_HEAD.unpack_from
_CM = METHOD_ID.unpack_from
_CONTENT_HEAD = struct.Struct(">HHQ").unpack_from  # class id, weight, body size
_CLOSE_HEAD = struct.Struct(">HHH")  # class id, method id, reply code
_CLOSE_TAIL = struct.Struct(">HH")  # the failing method's class id and method id
_DECODE_ERRORS = (IndexError, ValueError)  # what hotpath decoders raise on malformed input


class _Channel:
    """One open channel: its phase and the message being assembled."""

    __slots__ = ("body_size", "parts", "phase", "props", "publish", "raw_props", "received")

    def __init__(self) -> None:
        self.phase = CH_OPEN
        self.publish: tuple[str, str, int] = ("", "", 0)  # exchange, routing key, bits
        self.props = EMPTY_PROPERTIES
        self.raw_props = EMPTY_RAW_PROPERTIES
        self.body_size = 0
        self.received = 0
        self.parts: list[bytes] = []

    def reset_content(self) -> None:
        self.props = EMPTY_PROPERTIES
        self.raw_props = EMPTY_RAW_PROPERTIES
        self.received = 0
        self.parts = []


class AMQPServerConnection:
    def __init__(
        self,
        handler: ConnectionHandler,
        server_properties: dict[str, Any],
        *,
        frame_max: int = limits.FRAME_MAX_BYTES,
        channel_max: int = limits.CHANNEL_MAX,
        heartbeat: int = limits.HEARTBEAT_S,
        message_max: int = limits.MESSAGE_MAX_BYTES,
        mechanisms: tuple[str, ...] = ("PLAIN", "AMQPLAIN"),
    ) -> None:
        assert frame_max >= limits.FRAME_MIN_BYTES and 0 < channel_max <= 65_535
        self.handler = handler
        self.server_properties = server_properties
        self.mechanisms = mechanisms
        self.message_max = message_max
        # Proposed in connection.tune; the negotiated values replace them at tune-ok.
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self.username: str | None = None
        self.vhost: str | None = None
        self.client_properties: dict[str, Any] = {}
        self.outbox: list[bytes] = []
        self.closed = False
        self._state = AWAITING_HEADER
        self._mechanism = ""
        self._channels: dict[int, _Channel] = {}
        # Until tune-ok, frames are capped at RabbitMQ's initial_frame_max (4096): a peer that has not
        # logged in cannot make us buffer more than that, whatever size it claims.
        self._max_payload = max_payload(limits.FRAME_MAX_BEFORE_TUNE_BYTES)
        self._partial = bytearray()  # an incomplete frame, kept until it can be parsed
        self._need = len(PROTOCOL_HEADER)  # bytes _partial must hold before parsing is worthwhile

    # --- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Parse every complete frame in the input; keep an incomplete one for next time."""
        if self.closed or not data:
            return
        if type(data) is not bytes:  # slices of the input must be bytes, never views into it
            data = bytes(data)
        try:
            if self._partial:
                self._partial += data
                if len(self._partial) < self._need and self._state != AWAITING_HEADER:
                    return
                data = bytes(self._partial)
                self._partial.clear()
            if self._state == AWAITING_HEADER:
                data = self._protocol_header(data)
            pos = self._frames(data) if data else 0
            if pos < len(data) and not self.closed:
                self._keep(data, pos)
        except LostSync as exc:
            if self._state in (CLOSING, STARTING, TUNING):  # stream lost: stop waiting. Before tune-ok
                self._partial.clear()  # RabbitMQ hangs up without a close (its silent close)
                self._state = CLOSED
                self.closed = True
            self._close_connection(exc.code, exc.text, 0, 0, drop=True)
        except Exception as exc:  # a bug must cost one connection, never the broker
            self._internal_error(exc)

    def _protocol_header(self, data: bytes) -> bytes:
        if len(data) < len(PROTOCOL_HEADER):
            if PROTOCOL_HEADER.startswith(data):
                self._partial += data
            else:
                self._refuse_protocol()
            return b""
        if not data.startswith(PROTOCOL_HEADER):
            self._refuse_protocol()
            return b""
        self._state = STARTING
        self._send(0, c.Connection.Start(
            version_major=0, version_minor=9, server_properties=self.server_properties,
            mechanisms=" ".join(self.mechanisms), locales="en_US",
        ))
        return data[len(PROTOCOL_HEADER):]

    def _refuse_protocol(self) -> None:
        """Not AMQP 0-9-1: answer with the header we speak and hang up, as the spec says."""
        self.outbox.append(PROTOCOL_HEADER)
        self._state = CLOSED
        self.closed = True

    def _keep(self, data: bytes, pos: int) -> None:
        """Keep an incomplete frame; ``_need`` is its full length once its head is known (the
        head's size was checked against frame_max already, which bounds the buffer)."""
        rest = data[pos:]
        self._partial += rest
        head = FRAME_HEADER_SIZE
        self._need = FRAME_OVERHEAD_BYTES + _HEAD(rest, 0)[2] if len(rest) >= head else head
        if self._need > self._max_payload + FRAME_OVERHEAD_BYTES:
            raise LostSync("incomplete frame larger than frame_max")

    def _frames(self, data: bytes) -> int:
        """Handle the complete frames in ``data``; return where the incomplete rest begins.

        Longer than the house style on purpose: this is the per-message path. Body frames,
        content headers, publishes and acks on an open channel are dispatched inline; every
        other frame goes to ``_frame`` at once.
        """
        pos = 0
        n = len(data)
        channels = self._channels
        handler = self.handler
        max_payload = self._max_payload
        interned = INTERNED_PROPERTIES
        while n - pos >= 7:  # a whole frame head: its size is checked before the frame is whole
            ftype, ch, size = _HEAD(data, pos)
            if size > max_payload and size > (max_payload := self._max_payload):  # tune-ok may have
                # raised the bound earlier in this input. RabbitMQ's text: the size, frame_max less 8
                raise LostSync(f"type {ftype}, all octets = <<>>: {{frame_too_large,{size},"
                               f"{max_payload - FRAME_SIZE_FUDGE_BYTES}}}")
            end = pos + 7 + size
            if end >= n:
                break
            if data[end] != 0xCE:
                raise LostSync(f"type {ftype}, invalid frame end marker {data[end]:#04x}")
            start = pos + 7
            pos = end + 1
            chan = channels.get(ch)
            try:
                if chan is None or chan.phase == CH_CLOSING:
                    self._frame(ftype, ch, chan, data, start, end)
                elif ftype == FRAME_BODY and chan.phase == CH_BODY:
                    received = chan.received + size
                    if received == chan.body_size and not chan.parts:  # a one-frame body
                        exchange, routing_key, bits = chan.publish
                        message = Message(exchange, routing_key, data[start:end], chan.props,
                                          chan.raw_props)  # the one copy out of the input
                        chan.phase = CH_OPEN
                        handler.on_publish(ch, exchange, routing_key, bits & 1 == 1, message)
                    elif received < chan.body_size:
                        chan.parts.append(data[start:end])
                        chan.received = received
                    else:
                        self._last_body_frame(ch, chan, data[start:end], received)
                elif ftype == FRAME_HEADER and chan.phase == CH_HEADER:
                    if size < 14:
                        raise FrameError(f"type 2, {snippet(data[start:end])}: too short")
                    class_id, weight, body_size = _CONTENT_HEAD(data, start)
                    if class_id != BASIC_CLASS or weight or body_size > self.message_max:
                        self._refuse_content_header(class_id, body_size)
                    raw = data[start + 12:end]
                    chan.raw_props, chan.props = interned.get(raw) or intern_properties(raw)
                    chan.body_size = body_size
                    if body_size:
                        chan.phase = CH_BODY
                    else:
                        self._last_body_frame(ch, chan, b"", 0)
                elif ftype == FRAME_METHOD and chan.phase == CH_OPEN and size >= 4:
                    cm = _CM(data, start)[0]
                    if cm == BASIC_PUBLISH:  # the table's action, without the table lookup
                        self._on_publish(ch, chan, cm, data, start, end)
                    elif cm == BASIC_ACK:
                        self._on_ack(ch, chan, cm, data, start, end)
                    else:
                        self._channel_method(ch, chan, cm, data, start, end)
                else:
                    self._frame(ftype, ch, chan, data, start, end)
            except ProtocolError as exc:
                self._fail(exc, ch, _failed_method(ftype, data, start, end))
            except Exception as exc:
                self._internal_error(exc)
            if self.closed:
                break
        return pos

    # --- frames off the hot path -----------------------------------------------------------

    def _frame(self, ftype: int, ch: int, chan: _Channel | None, data: bytes, start: int,
               end: int) -> None:
        """Any frame but the hot ones: channel 0, unopened or closing channels, strays."""
        if ftype not in (FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT):
            raise FrameError(f"type {ftype}, {snippet(data[start:end])}: unknown_frame")
        if ftype == FRAME_METHOD and end - start < 4:
            raise FrameError(f"type 1, {snippet(data[start:end])}: method frame too short")
        if ch == 0:
            self._channel_zero_frame(ftype, data, start, end)
        elif self._state != RUNNING:
            if self._state != CLOSING:  # a channel frame before the handshake completed
                raise UnexpectedFrame(f"type {ftype}, {snippet(data[start:end])}")
        elif ftype == FRAME_HEARTBEAT:
            raise UnexpectedFrame(f"type 8, {snippet(data[start:end])} on channel {ch}")
        elif ftype == FRAME_METHOD:
            cm = _CM(data, start)[0]
            if chan is None:
                self._unopened_channel_method(ch, cm, data, start, end)
            else:
                self._channel_method(ch, chan, cm, data, start, end)
        elif chan is None:
            raise UnexpectedFrame("expected method frame, got non method frame instead")
        elif chan.phase != CH_CLOSING:
            raise UnexpectedFrame(_stray_content(chan.phase))

    def _channel_zero_frame(self, ftype: int, data: bytes, start: int, end: int) -> None:
        if ftype == FRAME_METHOD:
            self._connection_method(_CM(data, start)[0], data, start, end)
        elif ftype == FRAME_HEARTBEAT:
            if end != start and self._state != CLOSING:
                raise FrameError(f"type 8, {snippet(data[start:end])}: unknown_frame")
        elif self._state != CLOSING:
            raise UnexpectedFrame(f"type {ftype}, {snippet(data[start:end])} on channel 0")

    def _connection_method(self, cm: int, data: bytes, start: int, end: int) -> None:
        action = CONNECTION_TABLE.get((self._state, cm))
        if action is None:
            if self._state == CLOSING:
                return  # everything but close and close-ok is ignored while closing
            if method_class(cm) is None:
                raise NotImplemented_(f"unknown method {_method_name(cm)}")
            raise ChannelStateError(
                f"unexpected method in connection state {STATE_NAMES[self._state]}")
        getattr(self, "_on_" + action)(_decode(cm, data, start, end))

    def _unopened_channel_method(self, ch: int, cm: int, data: bytes, start: int,
                                 end: int) -> None:
        if method_class(cm) is None:
            raise NotImplemented_(f"unknown method {_method_name(cm)}")
        if cm != c.Channel.Open.index:
            raise ChannelStateError("expected 'channel.open'")
        if len(self._channels) >= self.channel_max:  # RabbitMQ counts open channels, not numbers
            self._close_connection(NOT_ALLOWED, f"NOT_ALLOWED - number of channels opened "
                                   f"({len(self._channels)}) has reached the negotiated channel_max "
                                   f"({self.channel_max})", 0, 0)
            return
        _decode(cm, data, start, end)
        self._channels[ch] = _Channel()
        self.handler.on_channel_open(ch)
        chan = self._channels.get(ch)
        if chan is not None and chan.phase == CH_OPEN:  # the handler may have closed it again
            self._send(ch, c.Channel.OpenOk())

    def _channel_method(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                        end: int) -> None:
        phase = chan.phase
        action = CHANNEL_TABLE.get((phase, cm))
        if action is None:
            if phase == CH_CLOSING:
                return  # ignored until close-ok, as the spec says
            if method_class(cm) is None:
                raise NotImplemented_(f"unknown method {_method_name(cm)}")
            if phase != CH_OPEN:
                raise UnexpectedFrame(_stray_content(phase))
            raise CommandInvalid("unimplemented method")
        getattr(self, "_on_" + action)(ch, chan, cm, data, start, end)

    # --- content assembly (basic.publish, header, body) ----------------------------------------

    def _on_publish(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                    end: int) -> None:
        try:
            exchange, routing_key, bits = hotpath.decode_publish(data, start, end)
        except _DECODE_ERRORS:
            raise _cannot_decode(data, start, end) from None
        if bits & 2:
            raise NotImplemented_("immediate=true")
        chan.publish = (exchange, routing_key, bits)
        chan.phase = CH_HEADER

    def _refuse_content_header(self, class_id: int, body_size: int) -> None:
        if class_id != BASIC_CLASS:
            raise UnexpectedFrame(f"expected content header for class 60, got one for class "
                                  f"{class_id} instead")
        if body_size > self.message_max:
            raise PreconditionFailed(f"message size {body_size} is larger than configured max "
                                     f"size {self.message_max}")
        raise UnexpectedFrame(_stray_content(CH_HEADER))  # a weight other than 0

    def _last_body_frame(self, ch: int, chan: _Channel, piece: bytes, received: int) -> None:
        if received > chan.body_size:
            raise FrameError("content body frame exceeds remaining content size")
        if chan.parts:
            chan.parts.append(piece)
            piece = b"".join(chan.parts)
        exchange, routing_key, bits = chan.publish
        message = Message(exchange, routing_key, piece, chan.props, chan.raw_props)
        chan.phase = CH_OPEN
        chan.received = 0
        chan.parts = []
        self.handler.on_publish(ch, exchange, routing_key, bits & 1 == 1, message)

    # --- connection actions (CONNECTION_TABLE) ---------------------------------------------

    def _on_start_ok(self, m: c.Connection.StartOk) -> None:
        self.client_properties = m.client_properties or {}
        mechanism = m.mechanism
        if mechanism not in self.mechanisms:
            raise CommandInvalid(f"unknown authentication mechanism '{mechanism}'")
        response = m.response.encode() if isinstance(m.response, str) else bytes(m.response)
        try:
            username, password = credentials(mechanism, response)
            self.handler.authenticate(username, password, mechanism)
        except (ProtocolError, ValueError):
            # RabbitMQ's safe text (the reason goes to its log), with class and method 0.
            self._close_connection(
                ACCESS_REFUSED, f"ACCESS_REFUSED - Login was refused using authentication "
                f"mechanism {mechanism}. For details see the broker logfile.", 0, 0)
            return
        self.username = username
        self._mechanism = mechanism
        self._state = TUNING
        self._send(0, c.Connection.Tune(self.channel_max, self.frame_max, self.heartbeat))

    def _on_tune_ok(self, m: c.Connection.TuneOk) -> None:
        frame_max = m.frame_max or self.frame_max  # 0: the client takes our value
        channel_max = m.channel_max or self.channel_max
        problem = self._tune_problem(frame_max, channel_max)
        if problem:  # RabbitMQ names connection.tune (10, 30) as the failing method
            self._close_connection(NOT_ALLOWED, f"NOT_ALLOWED - {problem}", 10, 30)
            return
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = m.heartbeat
        self._max_payload = max_payload(frame_max)
        self._state = OPENING

    def _tune_problem(self, frame_max: int, channel_max: int) -> str | None:
        """RabbitMQ's texts for tune-ok values outside what we proposed."""
        if frame_max < limits.FRAME_MIN_BYTES:
            return _negotiation("frame_max", frame_max, "lower", "minimum", limits.FRAME_MIN_BYTES)
        if frame_max > self.frame_max:
            return _negotiation("frame_max", frame_max, "higher", "maximum", self.frame_max)
        if channel_max > self.channel_max:
            return _negotiation("channel_max", channel_max, "higher", "maximum", self.channel_max)
        return None

    def _on_open(self, m: c.Connection.Open) -> None:
        self.handler.open_vhost(m.virtual_host)
        self.vhost = m.virtual_host
        self._state = RUNNING
        self._send(0, c.Connection.OpenOk())

    def _on_update_secret(self, m: c.Connection.UpdateSecret) -> None:
        try:
            secret = m.new_secret if isinstance(m.new_secret, str) else bytes(m.new_secret or b"").decode()
            self.handler.authenticate(self.username or "", secret, self._mechanism)
        except (ProtocolError, UnicodeDecodeError):  # a secret that is not UTF-8 cannot match one
            raise NotAllowed("New secret was refused by one of the backends") from None
        self._send(0, c.Connection.UpdateSecretOk())

    def _on_client_close(self, m: c.Connection.Close) -> None:
        self._state = CLOSED
        self._channels.clear()
        try:
            self.handler.on_connection_closed()
        finally:
            self._send(0, c.Connection.CloseOk())
            self.closed = True

    def _on_close_crossed(self, m: c.Connection.Close) -> None:
        """Both sides sent close: answer theirs, and ours is answered too."""
        self._send(0, c.Connection.CloseOk())
        self._on_close_ok(m)

    def _on_close_ok(self, m: Frame) -> None:
        self._state = CLOSED
        self.closed = True

    # --- channel actions (CHANNEL_TABLE) -----------------------------------------------------

    def _on_second_open(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                        end: int) -> None:
        raise ChannelStateError("second 'channel.open' seen")

    def _on_flow(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                 end: int) -> None:
        m: c.Channel.Flow = _decode(cm, data, start, end)  # type: ignore[assignment]
        self.handler.on_flow(ch, bool(m.active))
        self._send(ch, c.Channel.FlowOk(m.active))

    def _on_channel_close(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                          end: int) -> None:
        _decode(cm, data, start, end)
        del self._channels[ch]
        try:
            self.handler.on_channel_closed(ch)
        finally:
            self._send(ch, c.Channel.CloseOk())

    def _on_close_crossed_on_channel(self, ch: int, chan: _Channel, cm: int, data: bytes,
                                     start: int, end: int) -> None:
        self._send(ch, c.Channel.CloseOk())
        self._on_channel_close_ok(ch, chan, cm, data, start, end)

    def _on_channel_close_ok(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                             end: int) -> None:
        del self._channels[ch]
        self.handler.on_channel_closed(ch)

    def _on_ack(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                end: int) -> None:
        tag, bits = _decode_ack(data, start, end)
        self.handler.on_ack(ch, tag, bits & 1 == 1)

    def _on_nack(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                 end: int) -> None:
        tag, bits = _decode_ack(data, start, end)
        self.handler.on_nack(ch, tag, bits & 1 == 1, bits & 2 == 2)

    def _on_reject(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                   end: int) -> None:
        tag, bits = _decode_ack(data, start, end)
        self.handler.on_reject(ch, tag, bits & 1 == 1)

    def _on_delegate(self, ch: int, chan: _Channel, cm: int, data: bytes, start: int,
                     end: int) -> None:
        self.handler.on_method(ch, _decode(cm, data, start, end))

    # --- errors ------------------------------------------------------------------------------

    def _fail(self, exc: ProtocolError, ch: int, cm: int) -> None:
        """A protocol error while handling a frame on ``ch`` for method ``cm``."""
        class_id, method_id = getattr(exc, "reported_method", None) or split_method_id(cm)
        if not exc.connection_level and ch in self._channels:
            self.close_channel(ch, exc.code, exc.text, class_id, method_id)
        elif exc.connection_level or ch == 0:
            self._close_connection(exc.code, exc.text, class_id, method_id)
        # else: a channel error for a channel already gone (its handler raised on close)

    def _internal_error(self, exc: Exception) -> None:
        self._close_connection(INTERNAL_ERROR, f"INTERNAL_ERROR - {type(exc).__name__}: {exc}",
                               0, 0)

    # --- output ------------------------------------------------------------------------------

    # Every send_* drops what it is given for a channel that is not open (or is closing), and
    # everything once the connection is closing: after sending channel.close or connection.close
    # a peer may send nothing but the close handshake. The broker requeues those deliveries when
    # it hears the channel closed, as RabbitMQ's channel stops delivering once it closes.

    def send_method(self, channel: int, method: Frame) -> None:
        """A rare method, encoded from its pamqp object."""
        if self._sendable(channel):
            self._send(channel, method)

    def _send(self, channel: int, method: Frame) -> None:
        self.outbox.append(frame(FRAME_METHOD, channel, encode_method(method)))

    def _sendable(self, channel: int) -> bool:
        if channel == 0:
            return self._state == RUNNING
        chan = self._channels.get(channel)
        return chan is not None and chan.phase != CH_CLOSING

    def send_deliver(
        self, channel: int, consumer_tag: str, delivery_tag: int, redelivered: bool,
        exchange: str, routing_key: str, message: Message,
    ) -> None:
        chan = self._channels.get(channel)
        if chan is None or chan.phase == CH_CLOSING:
            return
        hotpath.deliver_frames(self.outbox, channel, self.frame_max, consumer_tag, delivery_tag,
                               redelivered, exchange, routing_key, message)

    def send_get_ok(
        self, channel: int, delivery_tag: int, redelivered: bool, exchange: str,
        routing_key: str, message_count: int, message: Message,
    ) -> None:
        if not self._sendable(channel):
            return
        hotpath.get_ok_frames(self.outbox, channel, self.frame_max, delivery_tag, redelivered,
                              exchange, routing_key, message_count, message)

    def send_return(
        self, channel: int, reply_code: int, reply_text: str, exchange: str, routing_key: str,
        message: Message,
    ) -> None:
        if not self._sendable(channel):
            return
        hotpath.return_frames(self.outbox, channel, self.frame_max, reply_code, reply_text,
                              exchange, routing_key, message)

    def send_confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None:
        chan = self._channels.get(channel)
        if chan is None or chan.phase == CH_CLOSING:
            return
        self.outbox.append(hotpath.confirm_frame(channel, delivery_tag, multiple, ack))

    def send_heartbeat(self) -> None:
        if not self.closed:
            self.outbox.append(HEARTBEAT_FRAME)

    def close_channel(
        self, channel: int, code: int, text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Server-initiated channel.close. The channel's frames are ignored until the client's
        close-ok (or its own close), then ``handler.on_channel_closed(channel)`` is called."""
        chan = self._channels.get(channel)
        if chan is None or chan.phase == CH_CLOSING or self._state != RUNNING:
            return
        chan.reset_content()
        chan.phase = CH_CLOSING
        self.outbox.append(_close_frame(channel, 20, code, text, class_id, method_id))

    def close_connection(
        self, code: int, text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Server-initiated connection.close; ``closed`` becomes True at the client's close-ok
        (at once if the handshake had not completed)."""
        self._close_connection(code, text, class_id, method_id)

    def _close_connection(self, code: int, text: str, class_id: int, method_id: int, *,
                          drop: bool = False) -> None:
        """``drop``: the stream cannot be trusted any more (or the peer never logged in), so the
        socket goes without waiting for close-ok."""
        if self._state in (CLOSING, CLOSED) or self.closed:
            return
        if self._state != AWAITING_HEADER:  # nothing to say to a peer that said nothing yet
            self.outbox.append(_close_frame(0, 10, code, text, class_id, method_id))
        self._channels.clear()
        if drop or self._state != RUNNING:
            self._partial.clear()  # kept otherwise: a half-received frame must stay in sync
            self._state = CLOSED
            self.closed = True
        else:
            self._state = CLOSING


def _close_frame(channel: int, class_id: int, code: int, text: str, failed_class: int,
                 failed_method: int) -> bytes:
    """connection.close (class 10) or channel.close (class 20); texts are cut to 255 bytes."""
    raw = text.encode("utf-8", "surrogateescape")[:255].decode("utf-8", "ignore").encode()
    payload = b"".join((
        _CLOSE_HEAD.pack(class_id, 50 if class_id == 10 else 40, code),
        hotpath.SHORT_LEN[len(raw)], raw, _CLOSE_TAIL.pack(failed_class, failed_method),
    ))
    return frame(FRAME_METHOD, channel, payload)


def _decode(cm: int, data: bytes, start: int, end: int) -> Frame:
    cls = method_class(cm)
    if cls is None:
        raise NotImplemented_(f"unknown method {_method_name(cm)}")
    try:
        return decode_method(cls, data, start + 4, end)
    except MethodDecodeError:
        raise _cannot_decode(data, start, end) from None


def _decode_ack(data: bytes, start: int, end: int) -> tuple[int, int]:
    try:
        return hotpath.decode_ack(data, start, end)
    except _DECODE_ERRORS:
        raise _cannot_decode(data, start, end) from None


def _cannot_decode(data: bytes, start: int, end: int) -> FrameError:
    return FrameError(f"cannot decode {data[start + 4:end][:64]!r}")


def _failed_method(ftype: int, data: bytes, start: int, end: int) -> int:
    """The method an error is about: the frame's own, or basic.publish for its content."""
    if ftype == FRAME_METHOD and end - start >= 4:
        return _CM(data, start)[0]
    return BASIC_PUBLISH if ftype in (FRAME_HEADER, FRAME_BODY) else 0


def _stray_content(phase: int) -> str:
    if phase == CH_HEADER:
        return "expected content header for class 60, got non content header frame instead"
    if phase == CH_BODY:
        return "expected content body, got non content body frame instead"
    return "expected method frame, got non method frame instead"


def _method_name(cm: int) -> str:
    class_id, method_id = split_method_id(cm)
    return f"{class_id}.{method_id}"


def _negotiation(field: str, value: int, side: str, bound: str, limit: int) -> str:
    return f"negotiated {field} = {value} is {side} than the {bound} allowed value ({limit})"
