"""HTTP/S deliveries: POSTs from the broker's own loop (an aiohttp ClientSession, bounded attempts,
each a task: the loop never waits on an endpoint), retried on AWS's schedule.

As AWS: a 2xx answer is delivered; 429, 5xx, a timeout or no connection is retried; any other answer
is a permanent failure (no retry). Deliveries waiting to retry live in memory only: a restart drops
them (the message itself was stored before Publish answered, in every queue it reached). The session
is closed when the last delivery ends, so an idle broker holds no client connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp

from ferrymq import limits

log = logging.getLogger("ferrymq.http.sns")
DELIVERED, RETRY, FAILED = "delivered", "retry", "failed"


def outcome(status: int) -> str:
    if 200 <= status < 300:
        return DELIVERED
    if status == 429 or status >= 500:
        return RETRY
    return FAILED


class HttpDeliverer:
    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[bool]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def send(self, url: str, headers: dict[str, str], body: str, delays_s: list[float],
             on_failure: Callable[[], None] | None = None) -> None:
        """POST ``body`` to ``url``; after each failure wait the next of ``delays_s`` and retry;
        ``on_failure`` runs when every attempt failed (the subscription's dead-letter queue)."""
        if len(self._tasks) >= limits.SNS_HTTP_PENDING_MAX:
            log.warning("SNS: %d HTTP deliveries pending; dropped one to %s", len(self._tasks), url)
            return
        task = asyncio.get_running_loop().create_task(self._deliver(url, headers, body, delays_s))
        self._tasks.add(task)

        def done(finished: asyncio.Task[bool]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and not finished.result() and on_failure is not None:
                on_failure()
            if not self._tasks and self._session is not None:
                session, self._session = self._session, None
                asyncio.get_running_loop().create_task(session.close())
        task.add_done_callback(done)

    async def _deliver(self, url: str, headers: dict[str, str], body: str, delays_s: list[float]) -> bool:
        for wait_s in [0.0, *delays_s]:
            if wait_s:
                await asyncio.sleep(wait_s)
            result = await self._post(url, headers, body)
            if result == DELIVERED:
                return True
            if result == FAILED:
                break
        log.info("SNS: delivery to %s failed after its retries", url)
        return False

    async def _post(self, url: str, headers: dict[str, str], body: str) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=limits.SNS_HTTP_TIMEOUT_S))
        try:
            async with self._session.post(url, data=body.encode(), headers=headers) as response:
                await response.read()
                return outcome(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("SNS: POST %s failed: %s", url, exc)
            return RETRY

    async def close(self) -> None:
        """Shutdown: deliveries still waiting are dropped (their messages were stored already)."""
        session, self._session = self._session, None
        for task in list(self._tasks):
            task.cancel()
        if session is not None:
            await session.close()
