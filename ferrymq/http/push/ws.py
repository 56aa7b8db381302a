"""GET /ws?exchange=<name>&key=<binding key>[&vhost=<name>]: a subscription over a WebSocket.

One JSON text message per frame (``frames``). aiohttp pings every HEARTBEAT_S and closes a socket
whose pong does not come back in time. What the browser sends is read (that is how pongs and the
close handshake are seen) and ignored: publishing goes through the HTTP API or AMQP.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ferrymq.http.push import bounds, params, pump
from ferrymq.http.push.subscription import Subscription
from ferrymq.http.responses import bad_request

routes = web.RouteTableDef()
INBOUND_MAX_BYTES = 4096  # a browser has nothing to say here beyond control frames


@routes.get("/ws")
async def websocket(request: web.Request) -> web.StreamResponse:
    target = params.target(request)
    ws = web.WebSocketResponse(heartbeat=bounds.HEARTBEAT_S, max_msg_size=INBOUND_MAX_BYTES)
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
    await pump.run(request, sub, ws.send_str, _no_beat, lambda: ws.closed, bounds.HEARTBEAT_S)
    reader.cancel()
    await ws.close()
    return ws


async def _read_until_closed(ws: web.WebSocketResponse, sub: Subscription) -> None:
    """Keep reading so pongs and the close handshake are processed; wake the pump at the end."""
    try:
        async for _ in ws:
            pass
    finally:
        sub.wake.set()


async def _no_beat() -> None:
    """aiohttp's own ping (``heartbeat=``) is the WebSocket heartbeat."""
