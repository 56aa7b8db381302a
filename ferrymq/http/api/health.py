"""/api/health/checks/* and /api/aliveness-test/{vhost}: RabbitMQ's health checks and their bodies
({"status": "ok"} with 200, or 503 with {"status": "failed", "reason": ...}).

FerryMQ is a single node with no TLS listener, so quorum/mirror criticality is always "single node
cluster" and no certificate can expire (as RabbitMQ answers without TLS listeners). Listener
protocols are RabbitMQ's names plus ``kafka`` (FerryMQ extension).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ferrymq.core.message import Message
from ferrymq.core.properties import Properties
from ferrymq.http.api.connections import NODE
from ferrymq.http.plane import PLANE, Plane
from ferrymq.http.responses import bad_request, not_found, ok

routes = web.RouteTableDef()
UNITS = ("days", "weeks", "months", "years")
ALIVENESS_QUEUE = "aliveness-test"


def _failed(body: dict[str, Any]) -> web.Response:
    return ok({"status": "failed", **body}, 503)


def _alarms(plane: Plane) -> web.Response:
    alarms = sorted(plane.amqp.alarms)
    if not alarms:
        return ok({"status": "ok"})
    return _failed({"reason": "resource alarm(s) in effect in the cluster",
                    "alarms": [{"node": NODE, "resource": a} for a in alarms]})


@routes.get("/api/health/checks/alarms")
async def alarms(request: web.Request) -> web.Response:
    return _alarms(request.app[PLANE])


@routes.get("/api/health/checks/local-alarms")
async def local_alarms(request: web.Request) -> web.Response:
    return _alarms(request.app[PLANE])


def _listeners(request: web.Request) -> dict[str, int]:
    """protocol -> port of every listener this node runs."""
    plane = request.app[PLANE]
    local = request.transport.get_extra_info("sockname") if request.transport else None
    out = {"amqp": plane.amqp.port}
    if local:
        out["http"] = out["http/prometheus"] = local[1]
    if plane.kafka is not None:
        out["kafka"] = plane.kafka.port
    return out


@routes.get("/api/health/checks/port-listener/{port}")
async def port_listener(request: web.Request) -> web.Response:
    try:
        port = int(request.match_info["port"])
    except ValueError:
        raise bad_request("Invalid port") from None
    ports = sorted(set(_listeners(request).values()))
    if port in ports:
        return ok({"status": "ok", "port": port})
    return _failed({"reason": "No active listener", "missing": port, "ports": ports})


@routes.get("/api/health/checks/protocol-listener/{protocol}")
async def protocol_listener(request: web.Request) -> web.Response:
    protocol = request.match_info["protocol"]
    listeners = _listeners(request)
    if protocol in listeners:
        return ok({"status": "ok", "protocol": protocol})
    return _failed({"reason": "No active listener", "missing": protocol, "protocols": list(listeners)})


@routes.get("/api/health/checks/virtual-hosts")
async def virtual_hosts(request: web.Request) -> web.Response:
    return ok({"status": "ok"})  # every vhost lives in this process: none can be down alone


@routes.get("/api/health/checks/node-is-quorum-critical")
async def quorum_critical(request: web.Request) -> web.Response:
    return ok({"status": "ok", "reason": "single node cluster"})


@routes.get("/api/health/checks/node-is-mirror-sync-critical")
async def mirror_sync_critical(request: web.Request) -> web.Response:
    return ok({"status": "ok", "reason": "single node cluster"})


@routes.get("/api/health/checks/certificate-expiration/{within}/{unit}")
async def certificate_expiration(request: web.Request) -> web.Response:
    try:
        within = int(request.match_info["within"])
    except ValueError:
        raise bad_request("Invalid expiration value.") from None
    if within < 0:
        raise bad_request("Invalid expiration value.")
    if request.match_info["unit"] not in UNITS:
        raise bad_request("Time unit not recognised. Supported units: days, weeks, months, years.")
    return ok({"status": "ok"})


@routes.get("/api/aliveness-test/{vhost}")
async def aliveness_test(request: web.Request) -> web.Response:
    """Declare the aliveness-test queue, publish a message to it and get it back, as RabbitMQ does."""
    plane = request.app[PLANE]
    vhost = plane.broker.vhosts.get(request.match_info["vhost"])
    if vhost is None:
        raise not_found()
    vhost.declare_queue(ALIVENESS_QUEUE, connection=None)
    ch = plane.broker.open_channel(vhost, 0, object(), request.get("user", ""))
    try:
        vhost.publish("", ALIVENESS_QUEUE, Message("", ALIVENESS_QUEUE, b"test_message", Properties(), None))
        got = ch.get(ALIVENESS_QUEUE, True)
    finally:
        plane.broker.close_channel(ch)
    plane.end_turn()
    if got is None or got[2].body != b"test_message":
        return _failed({"reason": "aliveness test failed"})
    return ok({"status": "ok"})
