"""Who an AWS-protocol request (SQS, SNS) acts as.

With no access keys configured, any credentials are accepted from loopback, as the broker's guest
user is, and the request acts in vhost "/"; from elsewhere it is refused. With keys configured,
every request must carry a valid Signature V4 by one of them, and acts as that key's user in its
vhost (docs/aws.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ferrymq.http.auth import is_loopback
from ferrymq.http.plane import PLANE
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.aws.sigv4 import SignatureError, verify_request

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Caller:
    user: str
    vhost: str
    region: str


async def caller(request: web.Request, service: str) -> Caller:
    plane = request.app[PLANE]
    keys = {k.id: k for k in plane.settings.aws_access_keys}
    if not keys:
        if not is_loopback(request):
            raise AwsError("InvalidClientTokenId", "The security token included in the request is "
                                                   "invalid (no access keys are configured: loopback "
                                                   "only).")
        return Caller("", "/", DEFAULT_REGION)
    body = await request.read()
    try:
        who = verify_request(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                             request.headers, body, now_ms=plane.clock.now_ms(),
                             secret_for=lambda i: keys[i].secret if i in keys else None,
                             service=service)
    except SignatureError as exc:
        raise AwsError(exc.code, exc.message) from None
    key = keys[who.access_key_id]
    return Caller(key.user, key.vhost, who.region or DEFAULT_REGION)
