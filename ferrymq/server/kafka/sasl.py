"""SASL PLAIN (SaslHandshake, SaslAuthenticate, and v0's bare token) against the broker's users."""

from __future__ import annotations

import asyncio
from typing import Any

from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.primitives import I32
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply


class SaslApis:
    def __init__(self, users: dict[str, str], loop: asyncio.AbstractEventLoop) -> None:
        self.users = users
        self.loop = loop

    def handlers(self) -> dict[int, Handler]:
        return {versions.SASL_HANDSHAKE: decoded(self.sasl_handshake),
                versions.SASL_AUTHENTICATE: decoded(self.sasl_authenticate)}

    def sasl_handshake(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        ok = req.mechanism == "PLAIN"
        reply(slot, {"error_code": 0 if ok else errors.UNSUPPORTED_SASL_MECHANISM,
                     "mechanisms": ["PLAIN"]})
        if ok and slot.version == 0:
            conn.sasl_raw = True

    def _check_plain(self, token: bytes) -> str | None:
        parts = token.split(b"\0")
        if len(parts) != 3:
            return None
        user, password = parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
        return user if self.users.get(user) == password else None

    def sasl_authenticate(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        user = self._check_plain(bytes(req.auth_bytes))
        if user is None:
            reply(slot, {"error_code": errors.SASL_AUTHENTICATION_FAILED,
                         "error_message": "Authentication failed: Invalid username or password",
                         "auth_bytes": b""})
            self.loop.call_later(0.05, conn.abort, "SASL authentication failed")
            return
        conn.authenticated_as = user
        reply(slot, {"error_code": 0, "error_message": None, "auth_bytes": b"", "session_lifetime": 0})

    def sasl_raw_token(self, conn: KafkaConnection, token: bytes) -> None:
        """SaslHandshake v0: the PLAIN token arrives bare; success is an empty frame, failure a close."""
        conn.sasl_raw = False
        user = self._check_plain(token)
        if user is None:
            conn.abort("SASL authentication failed")
            return
        conn.authenticated_as = user
        if conn.transport is not None:
            conn.transport.write(I32.pack(0))
