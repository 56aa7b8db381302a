"""The loop both transports share: subscribe, send what arrives, heartbeat when idle, clean up.

A transport gives three coroutines: ``send`` (a batch of frames in one write; it waits while the
socket's write buffer is full, which is what holds the acks back and so bounds the broker side), ``beat`` (a
heartbeat: a WebSocket ping, an SSE comment line) and ``gone`` (True once the client left).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from ferrymq.http.auth import USER
from ferrymq.http.dashboard.live import STOPPING
from ferrymq.http.plane import PLANE
from ferrymq.http.push import bounds, frames
from ferrymq.http.push.params import Target
from ferrymq.http.push.subscription import Subscription

Send = Callable[[list[bytes]], Awaitable[None]]
Beat = Callable[[], Awaitable[None]]
WriteNow = Callable[[list[bytes]], bool]


def subscribe(request: web.Request, target: Target) -> Subscription:
    """Open the subscription before any upgrade, so a refusal is still an HTTP error."""
    sub = Subscription(request.app[PLANE], target, request.get(USER, ""))
    sub.open()
    return sub


async def run(request: web.Request, sub: Subscription, send: Send, beat: Beat,
              gone: Callable[[], bool], poll_s: float, write_now: WriteNow | None = None) -> None:
    """Until the client leaves, the broker ends the subscription or the HTTP plane stops. ``gone``
    is asked at least every ``poll_s``; a heartbeat goes out after HEARTBEAT_S without a frame.
    With ``write_now`` the drain writes while the socket has room; this task takes over when full."""
    stopping = request.app.get(STOPPING) or asyncio.Event()
    clock = sub.plane.clock
    try:
        await send([frames.subscribed(**sub.describe())])
        sub.write_now = write_now
        last_ms = clock.monotonic_ms()
        while not gone() and not stopping.is_set():
            out, last_tag = await sub.next_frames(min(poll_s, bounds.HEARTBEAT_S))
            if not out and sub.ended is None and not sub.blocked:
                if clock.monotonic_ms() - last_ms >= bounds.HEARTBEAT_S * 1000:
                    await beat()
                    last_ms = clock.monotonic_ms()
                continue
            await send(out)  # blocked: this waits until the socket took what the drain wrote
            sub.blocked = False
            sub.sent(last_tag)
            last_ms = clock.monotonic_ms()
            if sub.ended is not None:
                await send([frames.closed(sub.ended)])
                break
    except (ConnectionError, asyncio.CancelledError):  # the client went away mid-send
        pass
    finally:
        sub.close()
