"""AMQP 0-9-1, sans-IO: the server connection (codec and state machines), the handler protocol
it calls, and what connection.start advertises."""

from ferrymq.protocols.amqp.connection import AMQPServerConnection
from ferrymq.protocols.amqp.handler import ConnectionHandler
from ferrymq.protocols.amqp.server_properties import server_properties

__all__ = ["AMQPServerConnection", "ConnectionHandler", "server_properties"]
