"""The server side of one AMQP 0-9-1 connection, sans-IO.

Bytes go in with ``receive_data``; every complete frame in the buffer is parsed in one pass and
handed to the handler (hot methods as plain values, the rest as pamqp objects). Replies and
deliveries are appended to ``outbox``; the shell writes it once per loop turn. Bad input never
raises: it becomes channel.close or connection.close with RabbitMQ's code and text.
"""

from __future__ import annotations

import struct
from typing import Any

from pamqp import commands as c
from pamqp import decode as pdecode
from pamqp import frame as pframe
from pamqp.base import Frame

from ferrymq import limits
from ferrymq.core.message import Message
from ferrymq.errors import (
    ACCESS_REFUSED,
    FRAME_ERROR,
    INTERNAL_ERROR,
    ChannelStateError,
    CommandInvalid,
    FrameError,
    NotImplemented_,
    ProtocolError,
    SyntaxError_,
    UnexpectedFrame,
)
from ferrymq.protocols.amqp import hotpath
from ferrymq.protocols.amqp.frames import (
    BASIC_ACK,
    BASIC_NACK,
    BASIC_PUBLISH,
    BASIC_REJECT,
    FRAME_BODY,
    FRAME_HEADER,
    FRAME_HEARTBEAT,
    FRAME_METHOD,
    HEARTBEAT_FRAME,
    PROTOCOL_HEADER,
)
from ferrymq.protocols.amqp.handler import ConnectionHandler
from ferrymq.protocols.amqp.properties import decode_properties

_HEAD = struct.Struct(">BHI")
_CM = struct.Struct(">I")  # class id and method id read as one number
_ACK = struct.Struct(">QB")
_CONTENT = struct.Struct(">HHQ")

# Connection states.
AWAIT_HEADER, AWAIT_START_OK, AWAIT_TUNE_OK, AWAIT_OPEN, OPEN, CLOSING, CLOSED = range(7)
# Channel states.
CH_OPEN, CH_CLOSING = 1, 2


class _Channel:
    """Per-channel codec state: open/closing and the message being assembled."""

    __slots__ = ("body", "body_size", "exchange", "mandatory", "props", "raw_props",
                 "received", "routing_key", "state")

    def __init__(self) -> None:
        self.state = CH_OPEN
        self.exchange: str | None = None  # not None while a publish awaits its content
        self.routing_key = ""
        self.mandatory = False
        self.props: Any = None  # set once the content header arrived
        self.raw_props = b""
        self.body_size = 0
        self.received = 0
        self.body: list[bytes] = []

    def reset(self) -> None:
        self.exchange = None
        self.props = None
        self.body = []
        self.received = 0


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
        self.handler = handler
        self.server_properties = server_properties
        self.frame_max = frame_max
        self.channel_max = channel_max
        self.heartbeat = heartbeat
        self.message_max = message_max
        self.mechanisms = mechanisms
        self.outbox: list[bytes] = []
        self.closed = False
        self.state = AWAIT_HEADER
        self.username: str | None = None
        self.vhost: str | None = None
        self.client_properties: dict[str, Any] = {}
        self._buf = bytearray()
        self._channels: dict[int, _Channel] = {}

    # --- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        if self.closed:
            return
        buf = self._buf
        buf += data
        if self.state == AWAIT_HEADER:
            if len(buf) < 8:
                if not PROTOCOL_HEADER.startswith(bytes(buf)):
                    self._bad_header()
                return
            if bytes(buf[:8]) != PROTOCOL_HEADER:
                self._bad_header()
                return
            del buf[:8]
            self._send_start()
        try:
            self._parse(buf)
        except ProtocolError as exc:
            self._fail(exc, 0, 0)
        except Exception as exc:  # a bug must cost one connection, never the broker
            self._fail(ProtocolError(f"internal error: {type(exc).__name__}: {exc}",
                                     INTERNAL_ERROR), 0, 0)

    def _parse(self, buf: bytearray) -> None:
        pos = 0
        n = len(buf)
        max_payload = self.frame_max - 8
        while n - pos >= 7 and not self.closed:
            ftype, ch, size = _HEAD.unpack_from(buf, pos)
            if size > max_payload:
                raise FrameError(
                    f"type {ftype}, frame size {size + 8} exceeds frame_max {self.frame_max}"
                )
            end = pos + 7 + size
            if end >= n:
                break
            if buf[end] != 0xCE:
                raise FrameError(f"type {ftype}, missing frame end octet")
            start = pos + 7
            pos = end + 1
            try:
                self._frame(ftype, ch, buf, start, end)
            except ProtocolError as exc:
                if isinstance(exc, FrameError):
                    raise
                cm = _class_method(buf, start) if ftype == FRAME_METHOD and end - start >= 4 else 0
                self._fail(exc, cm, ch if not exc.connection_level else 0)
        del buf[:pos]
        if len(buf) > self.frame_max + 8:
            raise FrameError("incomplete frame larger than frame_max")

    # --- frames ----------------------------------------------------------------------------

    def _frame(self, ftype: int, ch: int, buf: bytearray, start: int, end: int) -> None:
        if ftype == FRAME_METHOD:
            self._method(ch, buf, start, end)
        elif ftype == FRAME_BODY:
            self._body(ch, buf, start, end)
        elif ftype == FRAME_HEADER:
            self._header(ch, buf, start, end)
        elif ftype == FRAME_HEARTBEAT:
            if ch:
                raise FrameError(f"heartbeat frame on channel {ch}")
        else:
            raise FrameError(f"unknown frame type {ftype}")

    def _method(self, ch: int, buf: bytearray, start: int, end: int) -> None:
        if end - start < 4:
            raise FrameError("method frame too short")
        (cm,) = _CM.unpack_from(buf, start)
        try:
            if self._hot_method(ch, cm, buf, start, end):
                return
        except (ValueError, IndexError, struct.error) as exc:  # UnicodeDecodeError included
            raise SyntaxError_(f"malformed method frame {cm >> 16}.{cm & 0xFFFF}: {exc}") from None
        method = self._unmarshal(buf, start, end, cm)
        if ch == 0:
            self._connection_method(method, cm)
        else:
            self._channel_method(ch, method, cm)

    def _hot_method(self, ch: int, cm: int, buf: bytearray, start: int, end: int) -> bool:
        """publish / ack / nack / reject on an open channel, decoded by hand; False otherwise."""
        if ch and self.state == OPEN:
            chan = self._channels.get(ch)
            if chan is not None and chan.state == CH_OPEN:
                if chan.exchange is not None:
                    raise UnexpectedFrame(
                        f"expected content header for class 60, got non content header frame "
                        f"instead (method {cm >> 16}.{cm & 0xFFFF})"
                    )
                if cm == BASIC_PUBLISH:
                    self._publish(chan, buf, start + 4, end)
                    return True
                if cm in (BASIC_ACK, BASIC_NACK, BASIC_REJECT):
                    if end - start != 13:
                        raise ValueError("wrong length for an ack/nack/reject frame")
                    tag, bits = _ACK.unpack_from(buf, start + 4)
                    if cm == BASIC_ACK:
                        self._guard(ch, cm, self.handler.on_ack, ch, tag, bool(bits & 1))
                    elif cm == BASIC_NACK:
                        self._guard(ch, cm, self.handler.on_nack, ch, tag, bool(bits & 1),
                                    bool(bits & 2))
                    else:
                        self._guard(ch, cm, self.handler.on_reject, ch, tag, bool(bits & 1))
                    return True
        return False

    def _unmarshal(self, buf: bytearray, start: int, end: int, cm: int) -> Frame:
        try:
            _, _, method = pframe.unmarshal(bytes(buf[start - 7:end + 1]))
        except Exception:
            if c.INDEX_MAPPING.get(cm) is None:
                raise CommandInvalid(f"unknown method {cm >> 16}.{cm & 0xFFFF}") from None
            raise FrameError(f"cannot decode method frame {cm >> 16}.{cm & 0xFFFF}") from None
        return method

    def _publish(self, chan: _Channel, buf: bytearray, pos: int, end: int) -> None:
        exchange, routing_key, bits = hotpath.decode_publish(buf, pos, end)
        if bits & 2:
            raise NotImplemented_("immediate=true")
        chan.exchange = exchange
        chan.routing_key = routing_key
        chan.mandatory = bool(bits & 1)

    def _header(self, ch: int, buf: bytearray, start: int, end: int) -> None:
        if self.state == CLOSING:
            return
        chan = self._channels.get(ch)
        if chan is None or self.state != OPEN:
            raise ChannelStateError(f"expected 'channel.open' on channel {ch}")
        if chan.state == CH_CLOSING:
            return
        if chan.exchange is None or chan.props is not None:
            raise UnexpectedFrame(f"unexpected content header frame on channel {ch}")
        if end - start < 14:
            raise SyntaxError_(f"content header frame too short on channel {ch}")
        _, _, size = _CONTENT.unpack_from(buf, start)
        chan.raw_props = bytes(buf[start + 12:end])
        chan.props = decode_properties(buf, start + 12, end)
        chan.body_size = size
        if size > self.message_max:
            chan.reset()
            self.close_channel(ch, 406, f"PRECONDITION_FAILED - message size {size} is larger "
                               f"than configured max size {self.message_max}", 60, 40)
            return
        if size == 0:
            self._complete(ch, chan, b"")

    def _body(self, ch: int, buf: bytearray, start: int, end: int) -> None:
        if self.state == CLOSING:
            return
        chan = self._channels.get(ch)
        if chan is None or self.state != OPEN:
            raise ChannelStateError(f"expected 'channel.open' on channel {ch}")
        if chan.state == CH_CLOSING:
            return
        if chan.props is None:
            raise UnexpectedFrame(f"unexpected content body frame on channel {ch}")
        piece = bytes(buf[start:end])
        chan.received += len(piece)
        if chan.received > chan.body_size:
            raise FrameError(f"content body exceeds declared size {chan.body_size}")
        if chan.received == chan.body_size:
            body = b"".join((*chan.body, piece)) if chan.body else piece
            self._complete(ch, chan, body)
        else:
            chan.body.append(piece)

    def _complete(self, ch: int, chan: _Channel, body: bytes) -> None:
        exchange, routing_key = chan.exchange or "", chan.routing_key
        msg = Message(exchange, routing_key, body, chan.props, chan.raw_props)
        mandatory = chan.mandatory
        chan.reset()
        self._guard(ch, BASIC_PUBLISH, self.handler.on_publish, ch, exchange, routing_key,
                    mandatory, msg)

    # --- errors ------------------------------------------------------------------------------

    def _guard(self, ch: int, cm: int, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except ProtocolError as exc:
            self._fail(exc, cm, ch)

    def _fail(self, exc: ProtocolError, cm: int, ch: int) -> None:
        class_id, method_id = cm >> 16, cm & 0xFFFF
        if exc.connection_level or not ch:
            hard = exc.code == FRAME_ERROR
            self.close_connection(exc.code, exc.text, class_id, method_id, hard=hard)
        else:
            self.close_channel(ch, exc.code, exc.text, class_id, method_id)

    def _bad_header(self) -> None:
        self.outbox.append(PROTOCOL_HEADER)
        self.closed = True
        self.state = CLOSED

    # --- connection class ----------------------------------------------------------------------

    def _send_start(self) -> None:
        self.state = AWAIT_START_OK
        self.send_method(0, c.Connection.Start(
            version_major=0, version_minor=9, server_properties=self.server_properties,
            mechanisms=" ".join(self.mechanisms), locales="en_US",
        ))

    def _connection_method(self, m: Frame, cm: int) -> None:
        state = self.state
        if state == CLOSING:
            if isinstance(m, c.Connection.CloseOk | c.Connection.Close):
                if isinstance(m, c.Connection.Close):
                    self.send_method(0, c.Connection.CloseOk())
                self._finish()
            return
        if isinstance(m, c.Connection.Close):
            self.handler.on_connection_closed()
            self.send_method(0, c.Connection.CloseOk())
            self._finish()
        elif state == AWAIT_START_OK and isinstance(m, c.Connection.StartOk):
            self._start_ok(m)
        elif state == AWAIT_TUNE_OK and isinstance(m, c.Connection.TuneOk):
            self._tune_ok(m)
        elif state == AWAIT_OPEN and isinstance(m, c.Connection.Open):
            self._guard(0, cm, self._open, m)
        elif state == OPEN and isinstance(m, c.Connection.UpdateSecret):
            self.send_method(0, c.Connection.UpdateSecretOk())
        elif state == OPEN and isinstance(m, c.Connection.Blocked | c.Connection.Unblocked):
            return
        else:
            raise CommandInvalid(f"unexpected method {m.name} on channel 0")

    def _start_ok(self, m: c.Connection.StartOk) -> None:
        self.client_properties = m.client_properties or {}
        mechanism = m.mechanism
        refused = f"ACCESS_REFUSED - Login was refused using authentication mechanism {mechanism}." \
                  " For details see the broker logfile."
        if mechanism not in self.mechanisms:
            self.close_connection(ACCESS_REFUSED, f"ACCESS_REFUSED - unsupported authentication "
                                  f"mechanism '{mechanism}'", 10, 11, hard=True)
            return
        try:
            username, password = _credentials(mechanism, m.response)
            self.handler.authenticate(username, password, mechanism)
        except (ProtocolError, ValueError, struct.error):
            self.close_connection(ACCESS_REFUSED, refused, 10, 11, hard=True)
            return
        self.username = username
        self.state = AWAIT_TUNE_OK
        self.send_method(0, c.Connection.Tune(self.channel_max, self.frame_max, self.heartbeat))

    def _tune_ok(self, m: c.Connection.TuneOk) -> None:
        if m.frame_max:
            if m.frame_max < limits.FRAME_MIN_BYTES or m.frame_max > self.frame_max:
                raise FrameError(f"frame_max {m.frame_max} outside {limits.FRAME_MIN_BYTES}.."
                                 f"{self.frame_max}")
            self.frame_max = m.frame_max
        if m.channel_max:
            self.channel_max = min(self.channel_max, m.channel_max)
        self.heartbeat = m.heartbeat
        self.state = AWAIT_OPEN

    def _open(self, m: c.Connection.Open) -> None:
        self.handler.open_vhost(m.virtual_host)
        self.vhost = m.virtual_host
        self.state = OPEN
        self.send_method(0, c.Connection.OpenOk())

    def _finish(self) -> None:
        self.state = CLOSED
        self.closed = True

    # --- channel class -------------------------------------------------------------------------

    def _channel_method(self, ch: int, m: Frame, cm: int) -> None:
        if self.state == CLOSING:
            return
        if self.state != OPEN:
            raise CommandInvalid(f"unexpected method {m.name} before connection.open")
        chan = self._channels.get(ch)
        if chan is None:
            self._unopened(ch, m)
            return
        if chan.state == CH_CLOSING:
            if isinstance(m, c.Channel.CloseOk | c.Channel.Close):
                if isinstance(m, c.Channel.Close):
                    self.send_method(ch, c.Channel.CloseOk())
                del self._channels[ch]
                self.handler.on_channel_closed(ch)
            return
        if isinstance(m, c.Channel.Close):
            del self._channels[ch]
            self.handler.on_channel_closed(ch)
            self.send_method(ch, c.Channel.CloseOk())
        elif isinstance(m, c.Channel.Open):
            raise ChannelStateError(f"second 'channel.open' seen on channel {ch}")
        elif isinstance(m, c.Channel.Flow):
            self._guard(ch, cm, self.handler.on_flow, ch, m.active)
            self.send_method(ch, c.Channel.FlowOk(m.active))
        elif isinstance(m, c.Channel.CloseOk):
            return
        else:
            self._guard(ch, cm, self.handler.on_method, ch, m)

    def _unopened(self, ch: int, m: Frame) -> None:
        if not isinstance(m, c.Channel.Open):
            raise ChannelStateError(f"expected 'channel.open' on channel {ch}")
        if ch > self.channel_max:
            raise ChannelStateError(f"channel number {ch} exceeds channel_max {self.channel_max}")
        self._channels[ch] = _Channel()
        self.handler.on_channel_open(ch)
        self.send_method(ch, c.Channel.OpenOk())

    # --- output --------------------------------------------------------------------------------

    def send_method(self, channel: int, method: Frame) -> None:
        self.outbox.append(pframe.marshal(method, channel))

    def send_deliver(
        self, channel: int, consumer_tag: str, delivery_tag: int, redelivered: bool,
        exchange: str, routing_key: str, message: Message,
    ) -> None:
        payload = hotpath.deliver_payload(consumer_tag, delivery_tag, redelivered, exchange,
                                          routing_key)
        hotpath.content_frames(self.outbox, channel, payload, message, self.frame_max)

    def send_get_ok(
        self, channel: int, delivery_tag: int, redelivered: bool, exchange: str,
        routing_key: str, message_count: int, message: Message,
    ) -> None:
        payload = hotpath.get_ok_payload(delivery_tag, redelivered, exchange, routing_key,
                                         message_count)
        hotpath.content_frames(self.outbox, channel, payload, message, self.frame_max)

    def send_return(
        self, channel: int, reply_code: int, reply_text: str, exchange: str, routing_key: str,
        message: Message,
    ) -> None:
        payload = hotpath.return_payload(reply_code, reply_text, exchange, routing_key)
        hotpath.content_frames(self.outbox, channel, payload, message, self.frame_max)

    def send_confirm(self, channel: int, delivery_tag: int, multiple: bool, ack: bool) -> None:
        self.outbox.append(hotpath.confirm_frame(channel, delivery_tag, multiple, ack))

    def send_heartbeat(self) -> None:
        self.outbox.append(HEARTBEAT_FRAME)

    def close_channel(
        self, channel: int, code: int, text: str, class_id: int = 0, method_id: int = 0
    ) -> None:
        """Server-initiated channel.close; the channel's frames are ignored until close-ok."""
        chan = self._channels.get(channel)
        if chan is None or chan.state == CH_CLOSING:
            return
        chan.reset()
        chan.state = CH_CLOSING
        self.send_method(channel, c.Channel.Close(code, text[:255], class_id, method_id))

    def close_connection(
        self, code: int, text: str, class_id: int = 0, method_id: int = 0, *, hard: bool = False
    ) -> None:
        """Server-initiated connection.close; ``hard`` drops the socket without awaiting close-ok
        (the framing can no longer be trusted, or the peer never logged in)."""
        if self.state in (CLOSING, CLOSED):
            return
        was_open = self.state == OPEN
        self.send_method(0, c.Connection.Close(code, text[:255], class_id, method_id))
        self.state = CLOSING
        if hard or not was_open:
            self._finish()


def _class_method(buf: bytearray, start: int) -> int:
    """The (class, method) of the method frame that failed, for the close's class/method ids."""
    return _CM.unpack_from(buf, start)[0]


def _credentials(mechanism: str, response: str | bytes) -> tuple[str, str]:
    raw = response.encode() if isinstance(response, str) else bytes(response)
    if mechanism == "PLAIN":
        parts = raw.split(b"\x00")
        if len(parts) != 3:
            raise ValueError("malformed PLAIN response")
        return parts[1].decode(), parts[2].decode()
    _, table = pdecode.field_table(struct.pack(">I", len(raw)) + raw)
    login, password = table.get("LOGIN", ""), table.get("PASSWORD", "")
    return (login.decode() if isinstance(login, bytes) else str(login),
            password.decode() if isinstance(password, bytes) else str(password))

