"""`ferrymq queues | exchanges | ... | status`: the admin command line over the HTTP API.

It speaks RabbitMQ's management API (so it works against RabbitMQ too) plus FerryMQ's
/api/ferrymq/... extensions; it never imports the broker, only its settings (for the default URL).
"""
