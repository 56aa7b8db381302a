"""The SASL responses of connection.start-ok, decoded to (username, password).

PLAIN is ``authzid NUL username NUL password`` (RFC 4616; clients send an empty authzid).
AMQPLAIN is a field table with longstr LOGIN and PASSWORD entries, sent *without* the table's
4-byte length prefix (RabbitMQ parses the response bytes as the table body).
EXTERNAL (offered only on a TLS connection with a verified client certificate) carries no
credentials: the identity is the certificate's, which the connection's handler knows.
"""

from __future__ import annotations

from ferrymq.protocols.amqp.tables import decode_table

MECHANISMS = ("PLAIN", "AMQPLAIN")


def credentials(mechanism: str, response: bytes) -> tuple[str, str]:
    """Raises ValueError when the response is malformed or the mechanism unknown."""
    if mechanism == "PLAIN":
        parts = response.split(b"\x00")
        if len(parts) != 3:
            raise ValueError("PLAIN response is not authzid NUL user NUL password")
        return parts[1].decode(), parts[2].decode()
    if mechanism == "AMQPLAIN":
        table = decode_table(response, 0, len(response))
        login, password = table.get("LOGIN"), table.get("PASSWORD")
        if not isinstance(login, str | bytes) or not isinstance(password, str | bytes):
            raise ValueError("AMQPLAIN auth info is missing LOGIN or PASSWORD field")
        return _text(login), _text(password)
    if mechanism == "EXTERNAL":
        return "", ""
    raise ValueError(f"unsupported authentication mechanism {mechanism!r}")


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()
