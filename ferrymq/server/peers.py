"""Who is on the other end of a socket, as the login rules ask it (every listener asks the same way)."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Loopback-only users (``guest``) may log in only when this is true, as in RabbitMQ. An IPv4
    address seen through a dual-stack socket (``::ffff:127.0.0.1``) counts as the IPv4 address."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host in ("", "localhost")
    mapped = getattr(address, "ipv4_mapped", None)
    return bool((mapped or address).is_loopback)
