"""A small HTTP client for the management API, on the stdlib's urllib (no new dependency).

Two failures matter to scripts and are kept apart: the broker answered with an error (ApiError,
exit 1) and nothing answered at all (Unreachable, exit 3).
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ferrymq import limits

REASON_MAX_CHARS = 300  # one line on a terminal, not a page of HTML


class ApiError(Exception):
    """The broker answered 4xx/5xx; ``line`` is its RabbitMQ error body as one line."""

    def __init__(self, method: str, path: str, status: int, body: bytes, phrase: str = "") -> None:
        self.status = status
        self.body = parse_body(body)
        super().__init__(f"{method} {path}: {status} {error_line(self.body, body) or phrase or 'error'}")


class Unreachable(Exception):
    """Nothing answered at the URL: connection refused, timeout, a closed socket."""


def parse_body(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def error_line(parsed: Any, raw: bytes) -> str:
    """RabbitMQ's ``{"error": ..., "reason": ...}`` as ``error: reason``; any other body, its text."""
    if isinstance(parsed, dict) and ("error" in parsed or "reason" in parsed):
        parts = [str(parsed[k]) for k in ("error", "reason") if parsed.get(k) not in (None, "")]
        text = ": ".join(parts)
    else:
        text = raw.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text[:REASON_MAX_CHARS]


def vhost_path(vhost: str) -> str:
    """A vhost as one path segment: "/" is %2F, as RabbitMQ's API wants."""
    return quote(vhost, safe="")


def name_path(name: str, default: str = "") -> str:
    """A queue or exchange name as one path segment; the default exchange "" is amq.default."""
    return quote(name or default, safe="")


@dataclass(frozen=True, slots=True)
class Client:
    url: str
    user: str = "guest"
    password: str = "guest"
    timeout_s: float = limits.HTTP_ADMIN_TIMEOUT_S

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; the parsed JSON answer (None for 204), or ApiError / Unreachable."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        req.add_header("User-Agent", "ferrymq-cli")  # the audit log tells CLI actions from others
        # no Accept header: RabbitMQ 3.10 answers DELETE .../contents with 406 to "Accept: application/json"
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return parse_body(resp.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(method, path, exc.code, exc.read(), str(exc.reason)) from None
        except urllib.error.URLError as exc:
            raise Unreachable(f"cannot reach the broker at {self.url}: {_cause(exc.reason)}") from None
        except OSError as exc:  # reset or timed out mid-answer
            raise Unreachable(f"cannot reach the broker at {self.url}: {_cause(exc)}") from None
        except http.client.HTTPException as exc:  # something answered, but not HTTP (an AMQP port?)
            raise Unreachable(f"no HTTP API at {self.url}: {type(exc).__name__}") from None


def _cause(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
