"""What the codec calls on the layer above it.

Every call is made while a frame is being handled. Raising a ``ChannelError`` closes that channel
(channel.close with the error's code and text, and the class and method ids of the method being
handled); raising a ``ConnectionError_`` closes the connection the same way; any other exception
closes the connection with 541 INTERNAL_ERROR. Nothing a handler raises escapes ``receive_data``.
"""

from __future__ import annotations

from typing import Protocol

from pamqp.base import Frame

from ferrymq.core.message import Message


class ConnectionHandler(Protocol):
    def authenticate(self, username: str, password: str, mechanism: str) -> None:
        """Raise AccessRefused to refuse the login (also asked again on connection.update-secret,
        with the new secret as the password)."""

    def open_vhost(self, vhost: str) -> None:
        """Raise NotAllowed to refuse the virtual host (530)."""

    def on_channel_open(self, channel: int) -> None: ...

    def on_channel_closed(self, channel: int) -> None:
        """The channel is gone: closed by the client, or our close was acknowledged."""

    def on_connection_closed(self) -> None:
        """The client closed the connection (connection.close)."""

    def on_flow(self, channel: int, active: bool) -> None: ...

    def on_publish(
        self, channel: int, exchange: str, routing_key: str, mandatory: bool, message: Message
    ) -> None: ...

    def on_ack(self, channel: int, delivery_tag: int, multiple: bool) -> None: ...

    def on_nack(self, channel: int, delivery_tag: int, multiple: bool, requeue: bool) -> None: ...

    def on_reject(self, channel: int, delivery_tag: int, requeue: bool) -> None: ...

    def on_method(self, channel: int, method: Frame) -> None:
        """exchange.*, queue.*, basic.qos/consume/cancel/get/recover(-async), confirm.select and
        tx.*: the handler replies with ``send_method`` (or send_get_ok)."""
