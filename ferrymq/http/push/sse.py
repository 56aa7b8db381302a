"""GET /sse?exchange=<name>&key=<binding key>[&vhost=<name>]: a subscription as server-sent events.

Each frame is one ``data:`` line of JSON (``frames``: JSON never holds a raw newline); an idle
stream gets a ``: ping`` comment every HEARTBEAT_S, which keeps proxies from timing it out. A
client that left is seen by its closed transport, checked every GONE_CHECK_S, or by a failed write.
``retry:`` asks EventSource to reconnect after 2 s if the stream breaks.
"""

from __future__ import annotations

from aiohttp import web

from ferrymq.http.push import params, pump

routes = web.RouteTableDef()
HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
RETRY_MS = 2000
GONE_CHECK_S = 1.0  # a closed EventSource is noticed within this (its queue deleted)


@routes.get("/sse")
async def events(request: web.Request) -> web.StreamResponse:
    target = params.target(request)
    sub = pump.subscribe(request, target)
    response = web.StreamResponse(headers=HEADERS)
    try:
        await response.prepare(request)
        await response.write(f"retry: {RETRY_MS}\n\n".encode())
    except BaseException:
        sub.close()
        raise

    async def send(batch: list[bytes]) -> None:
        await response.write(b"".join([b"data: " + frame + b"\n\n" for frame in batch]))

    async def beat() -> None:
        await response.write(b": ping\n\n")

    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    await pump.run(request, sub, send, beat, gone, GONE_CHECK_S)
    return response
