"""RabbitMQ's management API (``/api/...``), and FerryMQ's own paths under ``/api/ferrymq/...``."""
