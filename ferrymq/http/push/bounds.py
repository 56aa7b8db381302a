"""Every bound of browser push, with the reasons for its number.

A browser that stops reading may hold at most QUEUE_MAX_MESSAGES / QUEUE_MAX_BYTES in its private
queue (older ones are dropped from the head and the browser told how many it skipped), PREFETCH
deliveries in its subscription, and one transport write buffer (aiohttp's 64 KiB limit, after which
a send waits): nothing it does grows the broker beyond that.
"""

from __future__ import annotations

from ferrymq import limits

QUEUE_MAX_MESSAGES = 512  # half a second of the 1,000 msg/s fan-out goal: lag past it is skipped
QUEUE_MAX_BYTES = 1024 * 1024  # a few large messages must not pin more than this per browser
PREFETCH = 64  # deliveries taken from the queue before the browser's socket has taken the last ones
HEARTBEAT_S = 15.0  # WebSocket ping / SSE comment interval: under common 30-60 s proxy idle timeouts
KEY_MAX_BYTES = limits.SHORTSTR_MAX_BYTES  # a binding key is an AMQP shortstr
EXCHANGE_MAX_BYTES = limits.SHORTSTR_MAX_BYTES

assert 0 < PREFETCH <= QUEUE_MAX_MESSAGES
assert HEARTBEAT_S > 0
