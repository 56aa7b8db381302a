"""RabbitMQ's ``/api/nodes`` (this one node: memory and disk against their watermarks, the alarms),
and FerryMQ's live setting of the memory watermark, ``/api/ferrymq/vm-memory-high-watermark``
(an extension: RabbitMQ sets it with ``rabbitmqctl set_vm_memory_high_watermark``, not over HTTP).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, UntypedMetricFamily
from prometheus_client.metrics_core import Metric

from ferrymq.core.watermark import parse_watermark
from ferrymq.http import lookup, views
from ferrymq.http.plane import Plane
from ferrymq.http.responses import bad_request, no_content, not_found, ok

routes = web.RouteTableDef()


def _disk(plane: Plane) -> tuple[int, int]:
    """(free bytes, limit) of the data directory's file system; (0, limit) without one."""
    limit = plane.settings.disk_free_limit_bytes
    if plane.durability is None:
        return 0, limit
    try:
        return shutil.disk_usage(plane.durability.data.path).free, limit
    except OSError:
        return 0, limit


def node_json(plane: Plane) -> dict[str, Any]:
    memory, alarms = plane.amqp.memory, plane.amqp.alarms
    free, free_limit = _disk(plane)
    return {
        "name": views.NODE, "type": "disc", "running": True, "being_drained": False,
        "mem_used": memory.used_bytes, "mem_limit": memory.limit_bytes,
        "mem_alarm": "memory" in alarms, "mem_calculation_strategy": "rss",
        "vm_memory_high_watermark": memory.watermark.as_json(), "total_memory": memory.total_bytes,
        "disk_free": free, "disk_free_limit": free_limit, "disk_free_alarm": "disk" in alarms,
        "fd_used": _fds(), "proc_used": 1, "os_pid": str(os.getpid()),
    }


def _fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


@routes.get("/api/nodes")
async def nodes(request: web.Request) -> web.Response:
    return ok([node_json(lookup.plane(request))])


@routes.get("/api/nodes/{name}")
async def node(request: web.Request) -> web.Response:
    if request.match_info["name"] != views.NODE:
        raise not_found()
    return ok(node_json(lookup.plane(request)))


@routes.get("/api/ferrymq/vm-memory-high-watermark")
async def watermark(request: web.Request) -> web.Response:
    memory = lookup.plane(request).amqp.memory
    return ok({**memory.watermark.as_json(), "limit": memory.limit_bytes, "used": memory.used_bytes})


@routes.put("/api/ferrymq/vm-memory-high-watermark")
async def watermark_put(request: web.Request) -> web.Response:
    """{"relative": 0.4} or {"absolute": "1GiB"}: applied and checked at once (not stored: the
    setting at the next start is the configured one, as with rabbitmqctl)."""
    data = await lookup.body(request)
    if len(data) != 1 or next(iter(data)) not in ("relative", "absolute"):
        raise bad_request('expected {"relative": <fraction>} or {"absolute": <bytes or "1GiB">}')
    try:
        mark = parse_watermark(data)
    except (ValueError, TypeError) as exc:
        raise bad_request(str(exc)) from None
    plane = lookup.plane(request)
    plane.amqp.set_memory_watermark(mark)
    plane.end_turn()
    return no_content()


def alarm_families(plane: Plane) -> Iterator[Metric]:
    """RabbitMQ's prometheus plugin names (and types: the alarm flags are untyped there) for memory,
    disk and their alarms."""
    memory, alarms = plane.amqp.memory, plane.amqp.alarms
    free, free_limit = _disk(plane)
    for name, help_, value in (
        ("rabbitmq_process_resident_memory_bytes", "Memory used in bytes", memory.used_bytes),
        ("rabbitmq_resident_memory_limit_bytes", "Memory high watermark in bytes", memory.limit_bytes),
        ("rabbitmq_disk_space_available_bytes", "Disk space available in bytes", free),
        ("rabbitmq_disk_space_available_limit_bytes", "Free disk space low watermark in bytes", free_limit),
    ):
        yield GaugeMetricFamily(name, help_, value=value)
    for name, help_, value in (
        ("rabbitmq_alarms_memory_used_watermark",
         "is 1 if VM memory watermark alarm is in effect", int("memory" in alarms)),
        ("rabbitmq_alarms_free_disk_space_watermark",
         "is 1 if free disk space watermark alarm is in effect", int("disk" in alarms)),
    ):
        yield UntypedMetricFamily(name, help_, value=value)
