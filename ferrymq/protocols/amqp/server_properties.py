"""What connection.start says about us: RabbitMQ's nine capabilities, and who we are."""

from __future__ import annotations

from typing import Any

CAPABILITIES = (
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "consumer_priorities",
    "authentication_failure_close",
    "per_consumer_qos",
    "direct_reply_to",
)


def server_properties(product: str, version: str, platform: str) -> dict[str, Any]:
    return {
        "capabilities": dict.fromkeys(CAPABILITIES, True),
        "product": product,
        "version": version,
        "platform": platform,
        "cluster_name": "ferrymq",
        "copyright": "FerryMQ contributors",
        "information": "FerryMQ, a RabbitMQ-compatible broker written in Python. "
                       "Licensed under the Apache License 2.0",
    }
