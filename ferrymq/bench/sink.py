"""A null AMQP server: completes the handshake, answers the setup methods, confirms every
publish and throws the body away. Measuring the load generator against it shows the
generator's own ceiling, which must sit far above any broker it is used to measure.

    python -m ferrymq.bench.sink --port 5699
"""

from __future__ import annotations

import argparse
import asyncio
import struct

from pamqp import commands as c
from pamqp import frame as pframe

from ferrymq.protocols.amqp.hotpath import confirm_frame
from ferrymq.server.app import new_event_loop

_HEAD = struct.Struct(">BHI")
_CM = struct.Struct(">I")
PUBLISH = (60 << 16) | 40
REPLIES = {
    c.Channel.Open: lambda m: c.Channel.OpenOk(),
    c.Queue.Declare: lambda m: c.Queue.DeclareOk(m.queue or "sink", 0, 0),
    c.Queue.Delete: lambda m: c.Queue.DeleteOk(0),
    c.Channel.Close: lambda m: c.Channel.CloseOk(),
    c.Confirm.Select: lambda m: c.Confirm.SelectOk(),
    c.Basic.Qos: lambda m: c.Basic.QosOk(),
    c.Basic.Consume: lambda m: c.Basic.ConsumeOk(m.consumer_tag or "sink"),
    c.Connection.Open: lambda m: c.Connection.OpenOk(),
    c.Connection.StartOk: lambda m: c.Connection.Tune(2047, 131072, 0),
    c.Connection.Close: lambda m: c.Connection.CloseOk(),
}


class SinkProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.published = 0
        self.confirming = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        buf = self.buf
        buf += data
        pos = 0
        if buf.startswith(b"AMQP"):
            self.transport.write(pframe.marshal(c.Connection.Start(
                server_properties={"capabilities": {"publisher_confirms": True, "basic.nack": True}},
                mechanisms="PLAIN", locales="en_US"), 0))
            pos = 8
        out = []
        n = len(buf)
        while n - pos >= 8:
            ftype, ch, size = _HEAD.unpack_from(buf, pos)
            if n - pos < size + 8:
                break
            if ftype == 1:
                cm = _CM.unpack_from(buf, pos + 7)[0]
                if cm == PUBLISH:
                    self.published += 1
                else:
                    _, _, method = pframe.unmarshal(bytes(buf[pos:pos + size + 8]))
                    self.confirming |= isinstance(method, c.Confirm.Select)
                    reply = REPLIES.get(type(method))
                    if reply is not None:
                        out.append(pframe.marshal(reply(method), ch))
            pos += size + 8
        del buf[:pos]
        if self.confirming and self.published:
            out.append(confirm_frame(1, self.published, True, True))
        if out:
            self.transport.writelines(out)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port)
    print(f"sink listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--port", type=int, default=5699)
    args = ap.parse_args()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(args.port))


if __name__ == "__main__":
    main()
