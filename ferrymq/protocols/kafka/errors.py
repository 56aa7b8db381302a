"""The Kafka codec's errors, beside the Kafka error codes the broker sends (numbers from Apache
Kafka's ``Errors`` table, defined once in ferrymq.kafka_codes)."""

from __future__ import annotations

from ferrymq.errors import FerryMQError

# The codes are defined once in ferrymq.kafka_codes; this module re-exports them beside the
# codec's exceptions, so the protocol and the server say ``errors.NONE``.
from ferrymq.kafka_codes import *  # noqa: F403


class KafkaProtocolError(FerryMQError):
    """A request the codec cannot trust (truncated, oversized, unknown key): only its connection closes."""


class UnsupportedVersion(KafkaProtocolError):
    """An API version outside the advertised range."""

    def __init__(self, api_key: int, version: int) -> None:
        super().__init__(f"API {api_key} version {version} is not supported")
        self.api_key = api_key
        self.version = version
