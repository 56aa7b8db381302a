"""The HTTP plane: RabbitMQ's management API, Prometheus /metrics, the live dashboard, in the broker's
own event loop (aiohttp: chosen by measurement, see BENCHMARKS.md "HTTP stack")."""
