"""The HTTP listener: one aiohttp application in the broker's own event loop.

aiohttp over uvicorn + Starlette: both served the same endpoints at the same rate on one core here
(BENCHMARKS.md, "HTTP stack"), and aiohttp runs inside an existing loop without taking over its
signal handlers, with WebSocket and streaming responses built in.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from ferrymq import limits
from ferrymq.errors import AccessRefused, ChannelError, NotFound, ProtocolError
from ferrymq.http import routes
from ferrymq.http.audit import AUDIT, audit
from ferrymq.http.auth import basic_auth
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import JSON, error, not_found
from ferrymq.server.audit import AuditLog
from ferrymq.server.tls import create_server

log = logging.getLogger("ferrymq.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def broker_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Core errors become RabbitMQ's HTTP answers; anything unexpected is a logged 500, never a crash."""
    plane = request.app[PLANE]
    plane.broker.turn.ms = plane.clock.monotonic_ms()  # what a handler enqueues is stamped now
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 404 and exc.content_type != JSON:  # no route: RabbitMQ's body, not aiohttp's
            raise not_found() from None
        raise
    except NotFound as exc:  # RabbitMQ's HTTP reasons are the bare texts, without the reply code
        raise error(404, "not_found", exc.detail) from None
    except AccessRefused:  # e.g. an amq.* exchange: RabbitMQ answers its generic 401
        raise error(401, "not_authorised", "Access refused.") from None
    except (ChannelError, ProtocolError) as exc:
        raise error(400, "bad_request", exc.detail) from None
    except Exception:
        log.exception("HTTP %s %s failed", request.method, request.path)
        raise error(500, "internal_error", "the broker could not answer this request") from None


def build_app(plane: Plane) -> web.Application:
    app = web.Application(middlewares=[audit, broker_errors, basic_auth],
                          client_max_size=limits.HTTP_BODY_MAX_BYTES)
    app[PLANE] = plane
    audit_log = AuditLog.open(plane.settings, plane.clock)
    if audit_log is not None:
        app[AUDIT] = audit_log
        app.on_cleanup.append(lambda _app: _close(audit_log))
    routes.register(app)
    return app


async def _close(audit_log: AuditLog) -> None:
    audit_log.close()


class TlsSite(web.BaseSite):
    """An HTTPS site whose handshakes run in FerryMQ's TLS acceptor (a failed one is logged)."""

    __slots__ = ("_host", "_port", "port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, ctx: ssl.SSLContext) -> None:
        super().__init__(runner, ssl_context=ctx)
        self._host, self._port, self.port = host, port, port

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        assert self._runner.server is not None and self._ssl_context is not None
        self._server = await create_server(self._runner.server, self._host, self._port, self._ssl_context,
                                           "HTTPS")
        self.port = self._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]


class HttpServer:
    def __init__(self, plane: Plane) -> None:
        self.plane = plane
        self.app = build_app(plane)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        # handler_cancellation: a client that hangs up cancels its handler, so an abandoned SQS long
        # poll gives its consumer back at once instead of taking (and counting) the next message.
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def start_tls(self, host: str, port: int, ctx: ssl.SSLContext) -> int:
        """The HTTPS listener: the same application (after ``start``)."""
        assert self._runner is not None, "start the plain listener first"
        site = TlsSite(self._runner, host, port, ctx)
        await site.start()
        return site.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
