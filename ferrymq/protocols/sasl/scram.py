"""The server side of a SCRAM exchange (RFC 5802; SHA-256 and SHA-512 per RFC 7677), sans-IO.

Two rounds: client-first in, server-first out; client-final in, server-final out. ``receive`` takes
one client message and returns the reply, or raises ``ScramError`` with the text the front end sends
(Kafka's SaslAuthenticate error message). Who may log in (the user's stored credential, the loopback
rule) is the broker's decision: ``lookup`` returns the credential, or None for an unknown user or one
without SCRAM credentials. No channel binding is offered (``n`` or ``y`` GS2 flags only), and Kafka's
delegation tokens (``tokenauth=true``) are not supported.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

from ferrymq.core.scram import MECHANISMS, ScramCredential, hmac_digest

INVALID_USER = "Authentication failed: Invalid user credentials"
FIRST, FINAL, DONE = 0, 1, 2


class ScramError(Exception):
    """The exchange failed; ``str()`` is the message for the client."""


def _attributes(text: str) -> dict[str, str]:
    """``a=value`` pairs (Kafka adds extensions with longer names, such as ``tokenauth=true``)."""
    out: dict[str, str] = {}
    for part in text.split(","):
        key, eq, value = part.partition("=")
        if not key or not eq:
            raise ScramError(f"Invalid SCRAM message attribute {part!r}")
        out[key] = value
    return out


def _saslname(name: str) -> str:
    """RFC 5802 5.1: ',' and '=' arrive as '=2C' and '=3D'; any other '=' is malformed."""
    if "=" in name.replace("=2C", "").replace("=3D", ""):
        raise ScramError("Invalid SCRAM username")
    return name.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    def __init__(self, mechanism: str, lookup: Callable[[str], ScramCredential | None],
                 server_nonce: str) -> None:
        self.hash = MECHANISMS[mechanism]
        self.mechanism = mechanism
        self.lookup = lookup
        self.server_nonce = server_nonce
        self.state = FIRST
        self.username = ""
        self._gs2 = ""
        self._nonce = ""
        self._auth_message = ""
        self._credential: ScramCredential | None = None

    def receive(self, token: bytes) -> bytes:
        try:
            text = token.decode()
        except UnicodeDecodeError:
            raise ScramError("Invalid SCRAM message: not UTF-8") from None
        if self.state == FIRST:
            return self._client_first(text)
        if self.state == FINAL:
            return self._client_final(text)
        raise ScramError("SCRAM exchange already complete")

    def _client_first(self, text: str) -> bytes:
        flag, sep, rest = text.partition(",")
        authzid, sep2, bare = rest.partition(",")
        if not sep or not sep2 or flag not in ("n", "y") or (authzid and not authzid.startswith("a=")):
            raise ScramError("Invalid SCRAM client first message" + (
                ": channel binding is not supported" if flag.startswith("p=") else ""))
        attrs = _attributes(bare)
        if "n" not in attrs or "r" not in attrs or attrs.get("tokenauth") == "true":
            raise ScramError("Invalid SCRAM client first message")
        self.username = _saslname(attrs["n"])
        if authzid and _saslname(authzid[2:]) != self.username:
            raise ScramError("Authentication failed: Client requested an authorization id that is "
                             "different from username")
        self._credential = self.lookup(self.username)
        if self._credential is None:
            raise ScramError(INVALID_USER)
        self._gs2 = f"{flag},{authzid},"
        self._nonce = attrs["r"] + self.server_nonce
        salt = base64.b64encode(self._credential.salt).decode()
        server_first = f"r={self._nonce},s={salt},i={self._credential.iterations}"
        self._auth_message = f"{bare},{server_first}"
        self.state = FINAL
        return server_first.encode()

    def _client_final(self, text: str) -> bytes:
        without_proof, _, proof_part = text.rpartition(",p=")
        attrs = _attributes(without_proof) if without_proof else {}
        if attrs.get("r") != self._nonce:
            raise ScramError("Invalid SCRAM client final message: nonce mismatch")
        if attrs.get("c") != base64.b64encode(self._gs2.encode()).decode():
            raise ScramError("Invalid SCRAM client final message: channel binding mismatch")
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except (binascii.Error, ValueError):
            raise ScramError("Invalid SCRAM client final message: bad proof") from None
        cred = self._credential
        assert cred is not None
        auth = f"{self._auth_message},{without_proof}".encode()
        signature = hmac_digest(self.hash, cred.stored_key, auth)
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if len(proof) != len(signature) or not hmac.compare_digest(
                hashlib.new(self.hash, client_key).digest(), cred.stored_key):
            raise ScramError("Authentication failed during authentication due to invalid credentials "
                             f"with SASL mechanism {self.mechanism}")
        self.state = DONE
        verifier = base64.b64encode(hmac_digest(self.hash, cred.server_key, auth)).decode()
        return f"v={verifier}".encode()
