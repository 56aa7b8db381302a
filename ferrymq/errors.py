"""One error hierarchy. Protocol errors carry the AMQP reply code (and later the Kafka error code).

The core raises these as values the front ends map to wire replies; texts follow RabbitMQ's shape,
e.g. ``NOT_FOUND - no queue 'x' in vhost '/'``.
"""

from __future__ import annotations

from typing import ClassVar

# AMQP 0-9-1 reply codes (spec + RabbitMQ usage).
REPLY_SUCCESS = 200
CONTENT_TOO_LARGE = 311
NO_ROUTE = 312
NO_CONSUMERS = 313
CONNECTION_FORCED = 320
INVALID_PATH = 402
ACCESS_REFUSED = 403
NOT_FOUND = 404
RESOURCE_LOCKED = 405
PRECONDITION_FAILED = 406
FRAME_ERROR = 501
SYNTAX_ERROR = 502
COMMAND_INVALID = 503
CHANNEL_ERROR = 504
UNEXPECTED_FRAME = 505
RESOURCE_ERROR = 506
NOT_ALLOWED = 530
NOT_IMPLEMENTED = 540
INTERNAL_ERROR = 541

REPLY_NAMES: dict[int, str] = {
    REPLY_SUCCESS: "OK",
    CONTENT_TOO_LARGE: "CONTENT_TOO_LARGE",
    NO_ROUTE: "NO_ROUTE",
    NO_CONSUMERS: "NO_CONSUMERS",
    CONNECTION_FORCED: "CONNECTION_FORCED",
    INVALID_PATH: "INVALID_PATH",
    ACCESS_REFUSED: "ACCESS_REFUSED",
    NOT_FOUND: "NOT_FOUND",
    RESOURCE_LOCKED: "RESOURCE_LOCKED",
    PRECONDITION_FAILED: "PRECONDITION_FAILED",
    FRAME_ERROR: "FRAME_ERROR",
    SYNTAX_ERROR: "SYNTAX_ERROR",
    COMMAND_INVALID: "COMMAND_INVALID",
    CHANNEL_ERROR: "CHANNEL_ERROR",
    UNEXPECTED_FRAME: "UNEXPECTED_FRAME",
    RESOURCE_ERROR: "RESOURCE_ERROR",
    NOT_ALLOWED: "NOT_ALLOWED",
    NOT_IMPLEMENTED: "NOT_IMPLEMENTED",
    INTERNAL_ERROR: "INTERNAL_ERROR",
}


class FerryMQError(Exception):
    """Base of every error FerryMQ raises on purpose."""


class ProtocolError(FerryMQError):
    """An error with a reply code; ``text`` is the full RabbitMQ-style reply text."""

    code: ClassVar[int] = INTERNAL_ERROR
    connection_level: ClassVar[bool] = False

    def __init__(self, detail: str, code: int | None = None) -> None:
        if code is not None:
            self.code = code  # type: ignore[misc]
        self.detail = detail
        super().__init__(self.text)

    @property
    def text(self) -> str:
        return f"{REPLY_NAMES.get(self.code, 'ERROR')} - {self.detail}"


class ChannelError(ProtocolError):
    """Closes one channel (403, 404, 405, 406)."""

    code = PRECONDITION_FAILED


class AccessRefused(ChannelError):
    code = ACCESS_REFUSED


class NotFound(ChannelError):
    code = NOT_FOUND


class ResourceLocked(ChannelError):
    code = RESOURCE_LOCKED


class PreconditionFailed(ChannelError):
    code = PRECONDITION_FAILED


class ConnectionError_(ProtocolError):
    """Closes the whole connection (320, 402, 501-506, 530, 540, 541)."""

    code = INTERNAL_ERROR
    connection_level = True


class FrameError(ConnectionError_):
    code = FRAME_ERROR


class SyntaxError_(ConnectionError_):
    code = SYNTAX_ERROR


class CommandInvalid(ConnectionError_):
    code = COMMAND_INVALID


class ChannelStateError(ConnectionError_):
    code = CHANNEL_ERROR


class UnexpectedFrame(ConnectionError_):
    code = UNEXPECTED_FRAME


class NotAllowed(ConnectionError_):
    code = NOT_ALLOWED


class NotImplemented_(ConnectionError_):
    code = NOT_IMPLEMENTED


class InternalError(ConnectionError_):
    code = INTERNAL_ERROR


class ConnectionForced(ConnectionError_):
    code = CONNECTION_FORCED
