"""GET /ws?exchange=<name>&key=<binding key>[&vhost=<name>]: a subscription over a WebSocket.

One JSON text message per frame (``frames``). aiohttp pings every HEARTBEAT_S and closes a socket
whose pong does not come back in time. What the browser sends is read (that is how pongs and the
close handshake are seen) and ignored: publishing goes through the HTTP API or AMQP.

Fan-out is the cost that matters (one message, a thousand browsers), so frames are written in
the turn's drain itself while the socket has room (no task woken per browser per message; the
task only waits out a full socket), a batch as one ``transport.write`` of ready-made server
frames (unmasked: a header and the JSON, encoded once per message for all subscribers) instead of
one aiohttp ``send_str`` each. permessage-deflate is declined: compressing every frame for every
browser would cost more than the whole delivery.
"""

from __future__ import annotations

import asyncio
import struct

from aiohttp import web

from ferrymq.http.push import bounds, params, pump
from ferrymq.http.push.subscription import Subscription
from ferrymq.http.responses import bad_request

routes = web.RouteTableDef()
INBOUND_MAX_BYTES = 4096  # a browser has nothing to say here beyond control frames
TEXT_FIN = 0x81


@routes.get("/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    target = params.target(request)
    ws = web.WebSocketResponse(heartbeat=bounds.HEARTBEAT_S, max_msg_size=INBOUND_MAX_BYTES,
                               compress=False)
    if not ws.can_prepare(request).ok:
        raise bad_request("expected a WebSocket upgrade (GET with Upgrade: websocket); "
                          "use /sse for server-sent events")
    sub = pump.subscribe(request, target)
    try:
        await ws.prepare(request)
    except BaseException:
        sub.close()
        raise
    reader = asyncio.create_task(_read_until_closed(ws, sub))
    send, write_now = _writers(request, ws)
    await pump.run(request, sub, send, _no_beat, lambda: ws.closed, bounds.HEARTBEAT_S, write_now)
    reader.cancel()
    await ws.close()
    return ws


def _writers(request: web.Request, ws: web.WebSocketResponse) -> tuple[pump.Send, pump.WriteNow]:
    """``write_now`` for the drain (False: the transport is past its high-water mark), and
    ``send``, which also waits for the transport to take it (the task's path)."""
    transport, stream = request.transport, request.writer
    high = transport.get_write_buffer_limits()[1] if transport is not None else 0

    def write_now(batch: list[bytes]) -> bool:
        if transport is None or transport.is_closing() or ws.closed:
            raise ConnectionResetError("the WebSocket is closed")
        transport.write(b"".join([_header(len(frame)) + frame for frame in batch]))
        return transport.get_write_buffer_size() <= high

    async def send(batch: list[bytes]) -> None:
        write_now(batch)
        await stream.drain()  # returns at once unless the transport is paused
    return send, write_now


def _header(size: int) -> bytes:
    if size < 126:
        return bytes((TEXT_FIN, size))
    if size < 65536:
        return struct.pack(">BBH", TEXT_FIN, 126, size)
    return struct.pack(">BBQ", TEXT_FIN, 127, size)


async def _read_until_closed(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Keep reading so pongs and the close handshake are processed; wake the pump at the end."""
    try:
        async for _ in ws:
            pass
    finally:
        sub.wake()


async def _no_beat() -> None:
    """aiohttp's own ping (``heartbeat=``) is the WebSocket heartbeat."""
