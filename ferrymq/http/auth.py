"""HTTP basic auth against the broker's users, with the broker's own rule (guest from loopback only).

The dashboard's pages cannot set an Authorization header on an EventSource, so the same credentials
are also accepted from the ``ferrymq-auth`` cookie the dashboard's login form sets (HttpOnly,
SameSite=Strict; it holds exactly what a basic-auth header holds).

A user's management tags then decide what it may see and do (ferrymq.http.tag_gate); configured
users are administrators, as RabbitMQ's default guest is.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
from collections.abc import Awaitable, Callable

from aiohttp import web

from ferrymq.core.broker import Broker
from ferrymq.errors import AccessRefused
from ferrymq.http import tag_gate
from ferrymq.http.plane import PLANE
from ferrymq.http.responses import error

USER = web.RequestKey("user", str)  # the authenticated user's name, set on every request that needs one
COOKIE = "ferrymq-auth"
REALM = 'Basic realm="RabbitMQ Management"'
# Paths anyone may read: Prometheus scrapes without credentials (as rabbitmq_prometheus serves
# /metrics), and the dashboard's login page and static assets carry no broker data.
PUBLIC_PREFIXES = ("/metrics", "/dashboard/static/", "/dashboard/login")
# /sns: SNS's SubscribeURL and UnsubscribeURL links, whose token or subscription ARN is the authority.
PUBLIC_EXACT = frozenset({"/", "/dashboard", "/dashboard/", "/sns"} | {
    f"/dashboard/{page}" for page in ("queues", "routing", "traces", "dlq", "streams", "connections", "lab")})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def user_tags(broker: Broker, name: str) -> list[str]:
    """A user's tags (RabbitMQ's management tags)."""
    return list(broker.user_tags.get(name, []))


def credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    raw = header[6:] if header[:6].lower() == "basic " else request.cookies.get(COOKIE, "")
    if not raw:
        return None
    try:
        user, sep, password = base64.b64decode(raw, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def is_loopback(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return False
    return _loopback_address(peer[0])


@functools.lru_cache(maxsize=1024)
def _loopback_address(host: str) -> bool:
    """Parsing an address costs more than the rest of an SQS request's auth: once per address."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def unauthorized(refused: bool = False) -> web.HTTPException:
    """RabbitMQ's 401s: no credentials get an empty body, refused ones ``Login failed``."""
    exc = error(401, "not_authorized", "Login failed") if refused else web.HTTPUnauthorized()
    if not refused:
        exc.text = ""
    exc.headers["WWW-Authenticate"] = REALM
    return exc


def public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def is_aws_request(request: web.Request) -> bool:
    """A request for the AWS endpoints (SQS, SNS): they authorise it themselves (AWS credentials,
    Signature V4), so basic auth lets it through."""
    if request.method != "POST":
        return False
    if request.path == "/" or "X-Amz-Target" in request.headers:
        return True
    parts = request.path.strip("/").split("/")
    return len(parts) == 2 and parts[0].isdigit() and len(parts[0]) == 12


@web.middleware
async def basic_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if public(request.path) or is_aws_request(request):
        return await handler(request)
    creds = credentials(request)
    if creds is None:
        raise unauthorized()
    broker = request.app[PLANE].broker
    try:
        broker.authenticate(*creds, loopback=is_loopback(request))
    except AccessRefused:
        raise unauthorized(refused=True) from None
    refused = tag_gate.refusal(request, broker, creds[0])
    if refused is not None:
        raise error(401, "not_authorised", refused)
    denied = tag_gate.amqp_refusal(request, broker, creds[0])
    if denied is not None:
        raise denied
    request[USER] = creds[0]
    return tag_gate.filter_listing(await handler(request), request, broker, creds[0])
