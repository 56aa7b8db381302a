"""Request headers in, response framing out.

Request header v1: api_key i16 | api_version i16 | correlation_id i32 | client_id nullable string;
v2 (flexible versions) adds tagged fields after client_id, which stays a classic string. Responses
are ``size i32 | correlation_id i32 | [tagged fields if flexible] | body`` — except ApiVersions,
whose response header never has tagged fields, so a client that does not yet know our versions can
always read it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ferrymq.protocols.kafka.primitives import I32, Reader

API_VERSIONS_KEY = 18


@dataclass(frozen=True, slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def parse_header(frame: bytes | memoryview, flexible_of: object) -> tuple[RequestHeader, Reader]:
    """The header and a reader positioned at the body. ``flexible_of(key, version)`` says whether the
    header carries tagged fields (only known once key and version are read)."""
    r = Reader(frame)
    api_key, version, corr = r.i16(), r.i16(), r.i32()
    client_id = r.nullable_string()
    if flexible_of(api_key, version):  # type: ignore[operator]
        r.skip_tagged_fields()
    return RequestHeader(api_key, version, corr, client_id), r


def frame_response(correlation_id: int, body: bytes, flexible: bool, api_key: int) -> bytes:
    """Size-prefixed response: header v1 (empty tagged fields) for flexible APIs but ApiVersions."""
    tags = b"\x00" if flexible and api_key != API_VERSIONS_KEY else b""
    head = I32.pack(correlation_id) + tags
    return I32.pack(len(head) + len(body)) + head + body
