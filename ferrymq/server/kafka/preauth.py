"""What a Kafka connection may send while its SASL exchange is under way, as Kafka's
SaslServerAuthenticator allows: only SaslHandshake and SaslAuthenticate (and ApiVersions), each
frame at most ``sasl.server.max.receive.size`` (524288 bytes). Anything else closes the connection
("Unexpected Kafka request of type ... during SASL handshake."), and a frame claiming more than the
cap closes it before a byte of it is buffered.

Why only while SASL is under way: FerryMQ's Kafka ports take unauthenticated clients too (PLAINTEXT
and SSL, as Kafka's listeners of those protocols do); a client that starts SASL is held to SASL's rules.
With ``kafka_sasl_required`` the listeners are SASL_PLAINTEXT / SASL_SSL ones: before a login only
ApiVersions and SaslHandshake are taken ("Unexpected Kafka request of type ... during SASL handshake.").
"""

from __future__ import annotations

from ferrymq import limits
from ferrymq.protocols.kafka import versions
from ferrymq.server.kafka.connection import KafkaConnection

DURING_SASL = frozenset((versions.API_VERSIONS, versions.SASL_HANDSHAKE, versions.SASL_AUTHENTICATE))


def in_sasl(conn: KafkaConnection) -> bool:
    return conn.frames.max_frame_bytes == limits.KAFKA_SASL_MAX_RECEIVE_BYTES


BEFORE_SASL = frozenset((versions.API_VERSIONS, versions.SASL_HANDSHAKE))


def refused(conn: KafkaConnection, api_key: int) -> bool:
    """Check one request before it is handled; True when it closed the connection."""
    if (conn.server.settings.kafka_sasl_required and conn.authenticated_as is None
            and api_key not in BEFORE_SASL and not in_sasl(conn)):
        conn.abort(f"Unexpected Kafka request of type {api_key} during SASL handshake.")
        return True
    if in_sasl(conn):
        if conn.authenticated_as is not None:  # the exchange completed: the usual request bound again
            conn.frames.max_frame_bytes = limits.KAFKA_REQUEST_MAX_BYTES
        elif api_key not in DURING_SASL:
            conn.abort(f"Unexpected Kafka request of type {api_key} during SASL handshake.")
            return True
    if api_key == versions.SASL_HANDSHAKE and conn.authenticated_as is None:
        conn.frames.max_frame_bytes = limits.KAFKA_SASL_MAX_RECEIVE_BYTES
    return False
