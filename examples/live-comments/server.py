"""Live comments: serves the page, posts comments to FerryMQ, and relays the broker's push stream.

    python examples/live-comments/server.py --broker http://127.0.0.1:15672 --port 8000

The page never holds broker credentials: this server does. It posts a comment through the
broker's HTTP API (``/api/exchanges/<vhost>/comments/publish``, routing key ``post.<id>.comment``)
and relays ``/ws`` (or ``/sse``) of the broker, adding its Authorization header, because a
browser cannot set headers on a WebSocket or an EventSource. Backpressure passes through the
relay: while a page's socket is full the relay stops reading, and the broker skips ahead.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
from pathlib import Path
from urllib.parse import quote

import aiohttp
from aiohttp import web

PAGE = Path(__file__).with_name("index.html")
EXCHANGE = "comments"
POST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONFIG = web.AppKey("config", dict)
SESSION = web.AppKey("session", aiohttp.ClientSession)


def post_id(request: web.Request) -> str:
    post = request.query.get("post", "42")
    if not POST_ID.match(post):
        raise web.HTTPBadRequest(text="post must be 1-64 letters, digits, _ or -")
    return post


def broker_url(request: web.Request, path: str, post: str) -> str:
    cfg = request.app[CONFIG]
    return (f"{cfg['broker']}{path}?exchange={EXCHANGE}&key={quote(f'post.{post}.#')}"
            f"&vhost={quote(cfg['vhost'], safe='')}")


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE)


async def post_comment(request: web.Request) -> web.Response:
    data = await request.json()
    post, cfg = post_id(request), request.app[CONFIG]
    body = json.dumps({"author": str(data.get("author", ""))[:80] or "anonymous",
                       "text": str(data.get("text", ""))[:2000]})
    publish = {"routing_key": f"post.{post}.comment", "payload": body, "payload_encoding": "string",
               "properties": {"content_type": "application/json"}}
    url = f"{cfg['broker']}/api/exchanges/{quote(cfg['vhost'], safe='')}/{EXCHANGE}/publish"
    async with request.app[SESSION].post(url, json=publish) as r:
        return web.json_response(await r.json(), status=r.status)


async def live_ws(request: web.Request) -> web.WebSocketResponse:
    """Relay the broker's frames to the page until either side closes."""
    url = broker_url(request, "/ws", post_id(request))
    page_ws = web.WebSocketResponse(heartbeat=30)
    await page_ws.prepare(request)
    async with request.app[SESSION].ws_connect(url) as upstream:
        watcher = asyncio.create_task(_close_when_page_leaves(page_ws, upstream))
        async for msg in upstream:
            if msg.type != aiohttp.WSMsgType.TEXT or page_ws.closed:
                break
            await page_ws.send_str(msg.data)
    watcher.cancel()
    await page_ws.close()
    return page_ws


async def _close_when_page_leaves(page_ws: web.WebSocketResponse,
                                  upstream: aiohttp.ClientWebSocketResponse) -> None:
    async for _ in page_ws:
        pass
    await upstream.close()


async def live_sse(request: web.Request) -> web.StreamResponse:
    """The same stream as server-sent events (for pages that prefer EventSource)."""
    url = broker_url(request, "/sse", post_id(request))
    async with request.app[SESSION].get(url) as upstream:
        if upstream.status != 200:
            return web.Response(status=upstream.status, text=await upstream.text())
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
    return response


async def declare_exchange(app: web.Application) -> None:
    cfg = app[CONFIG]
    auth = "Basic " + base64.b64encode(f"{cfg['user']}:{cfg['password']}".encode()).decode()
    app[SESSION] = aiohttp.ClientSession(headers={"Authorization": auth})
    url = f"{cfg['broker']}/api/exchanges/{quote(cfg['vhost'], safe='')}/{EXCHANGE}"
    async with app[SESSION].put(url, json={"type": "topic", "durable": True}) as r:
        r.raise_for_status()


async def close_session(app: web.Application) -> None:
    await app[SESSION].close()


def make_app(broker: str, user: str, password: str, vhost: str = "/") -> web.Application:
    app = web.Application()
    app[CONFIG] = {"broker": broker.rstrip("/"), "user": user, "password": password, "vhost": vhost}
    app.on_startup.append(declare_exchange)
    app.on_cleanup.append(close_session)
    app.router.add_get("/", page)
    app.router.add_post("/comments", post_comment)
    app.router.add_get("/live", live_ws)
    app.router.add_get("/live.sse", live_sse)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="http://127.0.0.1:15672", help="FerryMQ's HTTP listener")
    parser.add_argument("--user", default="guest")
    parser.add_argument("--password", default="guest")
    parser.add_argument("--vhost", default="/")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    args = parser.parse_args()
    asyncio.run(serve(make_app(args.broker, args.user, args.password, args.vhost), args.host, args.port))


async def serve(app: web.Application, host: str, port: int) -> None:
    """Like web.run_app, but says the port actually bound (``--port 0``)."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    print(f"live comments on http://{host}:{runner.addresses[0][1]}/?post=42", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()
