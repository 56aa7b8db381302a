"""SASL for Kafka clients: SaslHandshake picks a mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512),
SaslAuthenticate carries its rounds (KIP-152), and after a v0 handshake the same tokens arrive bare
(KIP-43's raw framing: each answer is a length-prefixed token, a failure closes the connection).

One authentication path for every protocol: PLAIN is checked by ``Broker.authenticate``, SCRAM by the
broker's stored credentials, and both end in the broker's login rules (``guest`` from loopback only),
exactly as an AMQP login does. A refusal names no reason (the log does), as RabbitMQ's does not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ferrymq.core.broker import Broker
from ferrymq.errors import AccessRefused
from ferrymq.protocols.kafka import errors, versions
from ferrymq.protocols.kafka.primitives import I32
from ferrymq.protocols.sasl.scram import ScramError, ScramServer
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply

log = logging.getLogger("ferrymq.kafka")

MECHANISMS = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PLAIN_REFUSED = "Authentication failed: Invalid username or password"  # Kafka's PlainSaslServer
CLOSE_DELAY_S = 0.05  # the refusal is written before the connection closes, as Kafka does


class SaslRefused(Exception):
    """A failed round; ``str()`` is the client's error message."""


class SaslApis:
    def __init__(self, broker: Broker, loop: asyncio.AbstractEventLoop) -> None:
        self.broker = broker
        self.loop = loop

    def handlers(self) -> dict[int, Handler]:
        return {versions.SASL_HANDSHAKE: decoded(self.sasl_handshake),
                versions.SASL_AUTHENTICATE: decoded(self.sasl_authenticate)}

    def sasl_handshake(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        ok = req.mechanism in MECHANISMS
        reply(slot, {"error_code": 0 if ok else errors.UNSUPPORTED_SASL_MECHANISM, "mechanisms": MECHANISMS})
        if ok:
            conn.sasl_mechanism, conn.sasl_exchange = req.mechanism, None
            conn.sasl_raw = slot.version == 0

    def sasl_authenticate(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        if not conn.sasl_mechanism:
            reply(slot, {"error_code": errors.ILLEGAL_SASL_STATE, "auth_bytes": b"",
                         "error_message": "Unexpected SaslAuthenticate request with no SaslHandshake"})
            self.loop.call_later(CLOSE_DELAY_S, conn.abort, "SaslAuthenticate before SaslHandshake")
            return
        try:
            answer = self._round(conn, bytes(req.auth_bytes))
        except SaslRefused as exc:
            reply(slot, {"error_code": errors.SASL_AUTHENTICATION_FAILED, "error_message": str(exc),
                         "auth_bytes": b""})
            self.loop.call_later(CLOSE_DELAY_S, conn.abort, "SASL authentication failed")
            return
        reply(slot, {"error_code": 0, "error_message": None, "auth_bytes": answer, "session_lifetime": 0})

    def sasl_raw_token(self, conn: KafkaConnection, token: bytes) -> None:
        """After SaslHandshake v0: a bare token in, a bare length-prefixed answer out."""
        try:
            answer = self._round(conn, token)
        except SaslRefused:
            conn.abort("SASL authentication failed")
            return
        conn.sasl_raw = conn.authenticated_as is None
        if conn.transport is not None:
            conn.transport.write(I32.pack(len(answer)) + answer)

    def _round(self, conn: KafkaConnection, token: bytes) -> bytes:
        """One client token of the chosen mechanism; the answer, or SaslRefused."""
        if conn.authenticated_as is not None and conn.sasl_exchange is None:
            raise SaslRefused("Authentication failed: already authenticated")
        if conn.sasl_mechanism == "PLAIN":
            self._login(conn, *_plain(token))
            return b""
        exchange = conn.sasl_exchange
        if exchange is None:
            exchange = conn.sasl_exchange = ScramServer(
                conn.sasl_mechanism, lambda user: self.broker.scram_credential(user, conn.sasl_mechanism),
                self.broker.unique_token())
        try:
            answer = exchange.receive(token)
        except ScramError as exc:
            self._refused(conn, exchange.username, str(exc))
            raise SaslRefused(str(exc)) from None
        if exchange.state == 2:  # proven: the broker's login rules decide
            self._login(conn, exchange.username, None, _scram_refused(conn))
            conn.sasl_exchange = None
        return answer

    def _login(self, conn: KafkaConnection, user: str, password: str | None,
               refusal: str = PLAIN_REFUSED) -> None:
        try:
            if password is None:
                self.broker.admit(user, loopback=conn.loopback)
            else:
                self.broker.authenticate(user, password, loopback=conn.loopback)
        except AccessRefused:
            self._refused(conn, user, "refused by the broker's login rules")
            raise SaslRefused(refusal) from None
        conn.authenticated_as = user

    def _refused(self, conn: KafkaConnection, user: str, why: str) -> None:
        log.warning("Kafka login refused for user %r from %s (%s): %s", user, conn.peer_host,
                    conn.sasl_mechanism, why)


def _scram_refused(conn: KafkaConnection) -> str:
    return ("Authentication failed during authentication due to invalid credentials with SASL mechanism "
            f"{conn.sasl_mechanism}")


def _plain(token: bytes) -> tuple[str, str]:
    """RFC 4616: authzid NUL user NUL password."""
    parts = token.split(b"\0")
    if len(parts) != 3:
        raise SaslRefused(PLAIN_REFUSED)
    return parts[1].decode(errors="replace"), parts[2].decode(errors="replace")
