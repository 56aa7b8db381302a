"""Reading a stream queue over pika from an offset until it is quiet or a limit is reached: what the
super stream tests (integration and compat) compare."""

from __future__ import annotations

from typing import Any, NamedTuple


class Read(NamedTuple):
    body: bytes
    routing_key: str
    offset: int  # the x-stream-offset header
    headers: dict[str, Any]


def read_stream(ch: Any, queue: str, limit: int = 100, offset: Any = "first",
                quiet_s: float = 1) -> list[Read]:
    """Each delivery acked as it comes; stops after ``limit`` or ``quiet_s`` without one."""
    ch.basic_qos(prefetch_count=50)
    got: list[Read] = []
    for method, props, body in ch.consume(queue, arguments={"x-stream-offset": offset},
                                          inactivity_timeout=quiet_s):
        if method is None:
            break
        got.append(Read(body, method.routing_key, props.headers["x-stream-offset"], props.headers))
        ch.basic_ack(method.delivery_tag)
        if len(got) == limit:
            break
    ch.cancel()
    return got
