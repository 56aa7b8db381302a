"""RabbitMQ's password hashes: base64(salt4 + H(salt4 + password)), as definitions files carry them.

The smallest piece of a user registry (issue 16 builds the full user model): a user imported from
a RabbitMQ definitions file keeps its hash, and logins are verified against it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

DEFAULT_ALGORITHM = "rabbit_password_hashing_sha256"
ALGORITHMS = {
    "rabbit_password_hashing_sha256": "sha256",
    "rabbit_password_hashing_sha512": "sha512",
    "rabbit_password_hashing_md5": "md5",
}


def hash_password(password: str, salt: bytes, algorithm: str = DEFAULT_ALGORITHM) -> str:
    """``salt`` is 4 bytes from the broker's Rng (never the random module: runs must replay)."""
    digest = hashlib.new(ALGORITHMS[algorithm], salt + password.encode()).digest()
    return base64.b64encode(salt + digest).decode()


def verify(stored: str, password: str, algorithm: str = DEFAULT_ALGORITHM) -> bool:
    """Does ``password`` match a stored hash? An empty or malformed hash matches nothing."""
    try:
        raw = base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(raw) <= 4 or algorithm not in ALGORITHMS:
        return False
    digest = hashlib.new(ALGORITHMS[algorithm], raw[:4] + password.encode()).digest()
    return hmac.compare_digest(digest, raw[4:])
