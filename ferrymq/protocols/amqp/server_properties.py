"""What connection.start says about us: RabbitMQ's nine capabilities, and who we are.

Clients read ``capabilities`` to decide what they may use (pika, kombu and aio-pika check
publisher_confirms, basic.nack, consumer_cancel_notify and connection.blocked); RabbitMQ 3.x
advertises exactly these nine.
"""

from __future__ import annotations

import platform as _platform
from typing import Any

from ferrymq import __version__

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


def server_properties(
    product: str = "FerryMQ",
    version: str = __version__,
    platform: str | None = None,
    cluster_name: str = "ferrymq",
) -> dict[str, Any]:
    return {
        "capabilities": dict.fromkeys(CAPABILITIES, True),
        "cluster_name": cluster_name,
        "copyright": "Copyright (c) FerryMQ contributors",
        "information": "FerryMQ, a RabbitMQ-compatible message broker written in Python. "
                       "Licensed under the Apache License 2.0",
        "platform": platform or f"Python {_platform.python_version()}",
        "product": product,
        "version": version,
    }
