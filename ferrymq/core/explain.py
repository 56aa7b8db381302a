"""The routing explainer for one vhost: where a publish to an exchange would go, and why.

``exchange.explain`` judges the bindings (through ``routing.resolve``, the publish path's own
code); this adds what only the vhost knows: the default exchange's implicit bindings, which
destinations are streams, whether anything was reached at all, and where each reached queue would
dead-letter to. Nothing is published.
"""

from __future__ import annotations

from typing import Any

from ferrymq.core.exchange.explain import Step, explain
from ferrymq.core.stream_queue import StreamQueue
from ferrymq.core.vhost import VHost

DEFAULT_EXCHANGE_NAMES = ("", "amq.default")


def explain_publish(vhost: VHost, exchange: str, routing_key: str,
                    headers: dict[str, Any] | None) -> dict[str, Any]:
    """The explainer's answer (the shape of POST /api/ferrymq/route/{vhost}/{exchange})."""
    if exchange in DEFAULT_EXCHANGE_NAMES:
        steps, reached, alternate = _default_exchange(vhost, routing_key), [routing_key], None
        reached = [routing_key] if routing_key in vhost.queues else []
    else:
        ex = vhost.get_exchange(exchange)
        found = explain(ex, routing_key, headers, vhost.exchanges.get)
        steps, reached = found.steps, found.queues
        alternate = found.via_alternate[0] if found.via_alternate else None
    present = [vhost.queues[name] for name in reached if name in vhost.queues]
    return {
        "exchange": exchange,
        "routing_key": routing_key,
        "steps": [{"exchange": s.exchange, "type": s.type, "bindings": s.bindings} for s in steps],
        "queues": [q.name for q in present if not isinstance(q, StreamQueue)],
        "streams": [q.name for q in present if isinstance(q, StreamQueue)],
        "alternate_exchange": alternate,
        "unroutable": not present,
        "dead_letter": {
            q.name: {"exchange": q.args.dead_letter_exchange,
                     "routing_key": q.args.dead_letter_routing_key or routing_key}
            for q in present if q.args.dead_letter_exchange is not None
        },
    }


def _default_exchange(vhost: VHost, routing_key: str) -> list[Step]:
    """The default exchange binds every queue under its own name (RabbitMQ's implicit bindings)."""
    bindings = [{
        "destination": name, "destination_type": "queue", "routing_key": name, "arguments": {},
        "matched": name == routing_key,
        "why": (f"default exchange: routing key '{routing_key}' is the queue's name"
                if name == routing_key else
                f"default exchange: routing key '{routing_key}' is not the queue's name"),
    } for name in vhost.queues]
    return [Step("", "direct", bindings)]
