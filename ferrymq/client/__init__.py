"""FerryMQ's own Python client on the project's AMQP codec: a blocking connection (``connection``)
and an in-place reader of deliveries and confirms (``deliveries``)."""
