"""The management API's JSON bodies: decoded as every handler decodes them, then read by the body
readers of the handlers users send most (queue declare and get, policies, a definitions import
into a real core broker).

The protocol's own errors: an HTTP 4xx (aiohttp's HTTPException, RabbitMQ's 400 bodies) and the
core's ProtocolError, which the plane's middleware answers with 400/401/404; a PolicyError is a
400 at its call site. Anything else would be the middleware's logged 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web

from ferrymq.clock import ManualClock, Rng
from ferrymq.core.broker import Broker
from ferrymq.core.policy import PolicyError, make_policy
from ferrymq.errors import ProtocolError
from ferrymq.fuzz.target import Finding, Target
from ferrymq.http import lookup
from ferrymq.http.api import definitions, queues
from ferrymq.http.plane import Plane
from ferrymq.http.responses import decode_json_body

_BROKER_INPUTS = 2_000  # a fresh broker after this many imports: the fuzzer's queues do not pile up


@dataclass(slots=True)
class _CorePlane:
    """What a definitions import touches of the plane: the core broker alone."""

    broker: Broker
    imports: int = 0


_plane = _CorePlane(Broker(ManualClock(), Rng(1)))


def one_input(data: bytes) -> None:
    try:
        body = decode_json_body(data)
        if isinstance(body, dict):
            _read(body)
    except web.HTTPException as exc:
        if exc.status >= 500:
            raise Finding(f"a {exc.status} for a client's body") from exc
    except (ProtocolError, PolicyError):
        return


def _read(body: dict[str, Any]) -> None:
    lookup.boolean(body, "durable"), lookup.arguments(body)
    if {"count", "ackmode", "encoding"} <= body.keys():
        queues._get_options(body)
    if "pattern" in body:
        make_policy("/", "p", body)
    _plane.imports += 1
    if _plane.imports > _BROKER_INPUTS:
        _plane.broker, _plane.imports = Broker(ManualClock(), Rng(1)), 0
    try:
        definitions._import_objects(cast(Plane, _plane), body, None)
    except (TypeError, ValueError, AttributeError):
        return  # definitions._import answers these with its 400 "invalid definitions"


def seeds() -> list[bytes]:
    bodies: list[Any] = [
        {"durable": True, "auto_delete": False, "arguments": {"x-max-length": 10, "x-queue-type": "classic"}},
        {"count": 5, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 50000},
        {"pattern": "^amq\\.", "definition": {"max-length": 5, "dead-letter-exchange": "dlx"},
         "priority": 1, "apply-to": "queues"},
        {"queues": [{"name": "q", "vhost": "/", "durable": True, "arguments": {"x-max-priority": 5}}],
         "exchanges": [{"name": "e", "vhost": "/", "type": "topic", "durable": True}],
         "bindings": [{"source": "e", "destination": "q", "destination_type": "queue",
                       "routing_key": "a.*", "arguments": {}}],
         "policies": [{"name": "ttl", "vhost": "/", "pattern": ".*", "definition": {"message-ttl": 60000}}]},
        {"properties": {"delivery_mode": 2, "headers": {"h": 1}}, "routing_key": "q", "payload": "x",
         "payload_encoding": "string"},
    ]
    return [json.dumps(b).encode() for b in bodies]


TARGETS = [Target("http-json", one_input, seeds,
                  "HTTP 4xx (HTTPException), ProtocolError (-> 400/401/404), PolicyError (-> 400)")]
