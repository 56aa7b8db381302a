"""Browser push: a browser subscribes to an exchange with a binding key over a WebSocket (``ws``) or
server-sent events (``sse``).

Each subscription is a core channel owned by a ``Subscription`` (a ChannelOwner), consuming from a
server-named exclusive auto-delete queue bound to the exchange: the one store and the one routing
path every other protocol uses, so a comment published over AMQP, Kafka-less HTTP or SQS reaches
the page the same way. Routes: ``ws.routes`` and ``sse.routes``.
"""
