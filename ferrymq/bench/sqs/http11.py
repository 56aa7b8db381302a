"""HTTP/1.1 for the generator, sans-IO: requests are byte templates built once per target and
action (only the body and its length change per call); responses are parsed from a buffer with
Content-Length or chunked bodies, many per read. No header dict is built per response: the
generator needs the status, the body and whether the server closes the connection."""

from __future__ import annotations

JSON_CONTENT_TYPE = "application/x-amz-json-1.0"
MAX_HEAD_BYTES = 64 * 1024  # a server's head larger than this is a protocol error, not a leak


class HttpError(Exception):
    """The server broke HTTP/1.1 framing (a bug to report, not a load figure)."""


def request_head(host: str, path: str, headers: dict[str, str]) -> bytes:
    """The request line and fixed headers, ending just before ``Content-Length``."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


def request(head: bytes, body: bytes) -> bytes:
    return b"".join((head, str(len(body)).encode(), b"\r\n\r\n", body))


class Response:
    __slots__ = ("body", "close", "status")

    def __init__(self, status: int, body: bytes, close: bool) -> None:
        self.status = status
        self.body = body
        self.close = close


class ResponseParser:
    """Feed bytes, take complete responses. One parser per connection."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Response]:
        self._buf += data
        out: list[Response] = []
        while True:
            r = self._one()
            if r is None:
                return out
            out.append(r)

    def _one(self) -> Response | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEAD_BYTES:
                raise HttpError(f"response head over {MAX_HEAD_BYTES} bytes")
            return None
        head = bytes(buf[:end]).lower()
        status, length, chunked, close = _head(head)
        if chunked:
            got = _chunked(buf, end + 4)
            if got is None:
                return None
            body, stop = got
        else:
            stop = end + 4 + length
            if len(buf) < stop:
                return None
            body = bytes(buf[end + 4:stop])
        del buf[:stop]
        return Response(status, body, close)


def _head(head: bytes) -> tuple[int, int, bool, bool]:
    """(status, content length, chunked, connection close) from a lower-cased head."""
    first, _, rest = head.partition(b"\r\n")
    parts = first.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"http/1.") or not parts[1].isdigit():
        raise HttpError(f"bad status line {first[:80]!r}")
    length, chunked = 0, False
    close = parts[0] == b"http/1.0"
    for line in rest.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = b"close" in value
    return int(parts[1]), length, chunked, close


def _chunked(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """(body, end offset) of a complete chunked body starting at ``pos``; None if incomplete."""
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        start = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", eol)
            return (b"".join(parts), trailer_end + 4) if trailer_end >= 0 else None
        if len(buf) < start + size + 2:
            return None
        parts.append(bytes(buf[start:start + size]))
        pos = start + size + 2
