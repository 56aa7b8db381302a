"""SCRAM credentials (RFC 5802, RFC 7677): what a broker keeps so a client can prove it knows a
password the broker never stores.

Why derived when the password is set: StoredKey and ServerKey come from the plain password through
PBKDF2, so they can only be made while the password is in hand (a config user, or ``put_user`` with a
password). A user imported with only RabbitMQ's one-way hash has none, and SCRAM refuses it.
The text form is Kafka's (``kafka-configs --describe`` shows the same fields).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

ITERATIONS = 4096  # Kafka's default and RFC 7677's minimum for SHA-256
MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
# Kafka's admin API bounds on a credential set by a client (ScramMechanism.minIterations, both
# mechanisms; ScramControlManager.MAX_ITERATIONS), and its mechanism numbers (ScramMechanism.type)
ITERATIONS_MIN, ITERATIONS_MAX = 4096, 16384
MECHANISM_TYPES = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}


@dataclass(frozen=True, slots=True)
class ScramCredential:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def encode(self) -> str:
        b64 = base64.b64encode
        return (f"salt={b64(self.salt).decode()},stored_key={b64(self.stored_key).decode()},"
                f"server_key={b64(self.server_key).decode()},iterations={self.iterations}")

    @classmethod
    def decode(cls, text: str) -> ScramCredential:
        """Raises ValueError on a malformed text."""
        fields = dict(part.split("=", 1) for part in text.split(","))
        b64 = base64.b64decode
        return cls(b64(fields["salt"]), int(fields["iterations"]), b64(fields["stored_key"]),
                   b64(fields["server_key"]))


def hmac_digest(hash_name: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hash_name).digest()


def salted_password(hash_name: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(hash_name, password.encode(), salt, iterations)


def derive(mechanism: str, password: str, salt: bytes, iterations: int = ITERATIONS) -> ScramCredential:
    """``salt`` from the broker's Rng (never the random module: runs must replay)."""
    return from_salted(mechanism, salted_password(MECHANISMS[mechanism], password, salt, iterations),
                       salt, iterations)


def from_salted(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    """The credential from SaltedPassword = Hi(password, salt, i): what a Kafka admin client sends
    (AlterUserScramCredentials), so the password itself never reaches the broker."""
    h = MECHANISMS[mechanism]
    client_key = hmac_digest(h, salted, b"Client Key")
    stored_key = hashlib.new(h, client_key).digest()
    return ScramCredential(salt, iterations, stored_key, hmac_digest(h, salted, b"Server Key"))
