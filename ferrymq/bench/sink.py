"""A null AMQP server: completes the handshake, answers the setup methods, confirms every
publish (one multiple ack per read) and throws the body away. Measuring the load generator
against it shows the generator's own ceiling, which must sit far above any broker it measures.

When a consumer has subscribed to the queue a publish names (default exchange, routing key =
queue), the sink hands the message on as a ``basic.deliver`` instead, after ``--delay-ms``: a
broker with one known latency, against which the generator's latency histogram is checked.
Nothing is stored or counted per consumer; acks from consumers are ignored.

    python -m ferrymq.bench.sink --port 5699 [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

from pamqp import commands as c
from pamqp.base import Frame

from ferrymq.protocols.amqp import client as codec
from ferrymq.protocols.amqp import hotpath
from ferrymq.protocols.amqp.frames import (
    BASIC_PUBLISH,
    CONTENT_HEADER_HEAD,
    FRAME_BODY,
    FRAME_HEAD,
    FRAME_HEADER,
    FRAME_METHOD,
    METHOD_ID,
    PROTOCOL_HEADER,
)
from ferrymq.protocols.amqp.methods import decode_method, method_class
from ferrymq.server.app import new_event_loop

REPLIES = {
    c.Channel.Open: lambda m: c.Channel.OpenOk(),
    c.Queue.Declare: lambda m: c.Queue.DeclareOk(m.queue or "sink", 0, 0),
    c.Queue.Bind: lambda m: c.Queue.BindOk(),
    c.Queue.Delete: lambda m: c.Queue.DeleteOk(0),
    c.Exchange.Declare: lambda m: c.Exchange.DeclareOk(),
    c.Exchange.Delete: lambda m: c.Exchange.DeleteOk(),
    c.Channel.Close: lambda m: c.Channel.CloseOk(),
    c.Confirm.Select: lambda m: c.Confirm.SelectOk(),
    c.Basic.Qos: lambda m: c.Basic.QosOk(),
    c.Basic.Consume: lambda m: c.Basic.ConsumeOk(m.consumer_tag or "sink"),
    c.Connection.Open: lambda m: c.Connection.OpenOk(),
    c.Connection.StartOk: lambda m: c.Connection.Tune(2047, 131072, 0),
    c.Connection.Close: lambda m: c.Connection.CloseOk(),
}
START = codec.encode_method(0, c.Connection.Start(
    server_properties={"product": "ferrymq-sink",
                       "capabilities": {"publisher_confirms": True, "basic.nack": True}},
    mechanisms="PLAIN", locales="en_US"))


class Subscriber:
    """A consumer on one queue: where echoed messages go."""

    __slots__ = ("channel", "next_tag", "tag", "transport")

    def __init__(self, transport: asyncio.Transport, channel: int, tag: str) -> None:
        self.transport, self.channel, self.tag, self.next_tag = transport, channel, tag, 0

    def deliver(self, routing_key: str, content: list[bytes]) -> list[bytes]:
        """basic.deliver + the publish's own header and body frames, renumbered to our channel."""
        self.next_tag += 1
        out = [hotpath.deliver_method(self.channel, self.tag, self.next_tag, False, "", routing_key)]
        for frame in content:
            out.append(FRAME_HEAD.pack(frame[0], self.channel, len(frame) - 8) + frame[7:])
        return out


class SinkProtocol(asyncio.Protocol):
    subscribers: dict[str, list[Subscriber]] = {}  # queue -> consumers (shared by connections)
    delay_s = 0.0

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.published = 0
        self.confirming = False
        self.echo_key: str | None = None  # routing key of the publish being assembled
        self.echo_frames: list[bytes] = []
        self.body_left = 0
        self.rr = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        for subs in self.subscribers.values():
            subs[:] = [s for s in subs if s.transport is not self.transport]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf
        buf += data
        pos = 0
        if buf.startswith(PROTOCOL_HEADER[:4]):
            self.transport.write(START)
            pos = len(PROTOCOL_HEADER)
        out: list[bytes] = []
        n = len(buf)
        unpack_head, unpack_id, subscribers = FRAME_HEAD.unpack_from, METHOD_ID.unpack_from, self.subscribers
        while n - pos >= 8:
            ftype, ch, size = unpack_head(buf, pos)
            end = pos + size + 8
            if n < end:
                break
            if ftype == FRAME_METHOD:
                if unpack_id(buf, pos + 7)[0] == BASIC_PUBLISH:  # the per-message frame: inline
                    self.published += 1
                    if subscribers:
                        self._echo_start(pos + 7, end - 1)
                else:
                    self._method(ch, pos + 7, end - 1, out)
            elif self.echo_key is not None and ftype in (FRAME_HEADER, FRAME_BODY):
                self._content(ftype, bytes(buf[pos:end]))
            pos = end
        del buf[:pos]
        if self.confirming and self.published:
            out.append(hotpath.confirm_frame(1, self.published, True, True))
        if out:
            self.transport.writelines(out)

    def _echo_start(self, start: int, end: int) -> None:
        """A publish to the default exchange whose queue has a consumer is assembled for the echo."""
        # decode_publish reads a bytearray as it reads bytes: no copy of the frame
        exchange, key, _ = hotpath.decode_publish(cast(bytes, self.buf), start, end)
        if not exchange and self.subscribers.get(key):
            self.echo_key, self.echo_frames = key, []

    def _method(self, ch: int, start: int, end: int, out: list[bytes]) -> None:
        """Any method but a publish: decoded, and answered."""
        buf = self.buf
        cls = method_class(METHOD_ID.unpack_from(buf, start)[0])
        if cls is None:
            return
        method = decode_method(cls, bytes(buf[start:end]), 4, end - start)
        self.confirming |= isinstance(method, c.Confirm.Select)
        if isinstance(method, c.Basic.Consume):
            sub = Subscriber(self.transport, ch, method.consumer_tag or "sink")  # type: ignore[arg-type]
            self.subscribers.setdefault(method.queue, []).append(sub)
        reply: Any = REPLIES.get(type(method))
        if reply is not None:
            answer: Frame = reply(method)
            out.append(codec.encode_method(ch, answer))

    def _content(self, ftype: int, frame: bytes) -> None:
        self.echo_frames.append(frame)
        if ftype == FRAME_HEADER:
            self.body_left = CONTENT_HEADER_HEAD.unpack_from(frame, 7)[2]
        else:
            self.body_left -= len(frame) - 8
        if self.body_left <= 0:
            assert self.echo_key is not None
            self._echo(self.echo_key, self.echo_frames)
            self.echo_key = None

    def _echo(self, key: str, frames: list[bytes]) -> None:
        subs = self.subscribers.get(key)
        if not subs:
            return
        self.rr += 1
        sub = subs[self.rr % len(subs)]
        if self.delay_s:
            asyncio.get_running_loop().call_later(self.delay_s, _write, sub, key, frames)
        else:
            _write(sub, key, frames)


def _write(sub: Subscriber, key: str, frames: list[bytes]) -> None:
    if not sub.transport.is_closing():
        sub.transport.writelines(sub.deliver(key, frames))


async def serve(port: int, delay_ms: float = 0.0) -> None:
    SinkProtocol.delay_s = delay_ms / 1000
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    print(f"sink listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m ferrymq.bench.sink", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=5699, help="0 = any free port (printed)")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="hand each message to its queue's consumer after this delay")
    args = ap.parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(args.port, args.delay_ms))


if __name__ == "__main__":
    main()
