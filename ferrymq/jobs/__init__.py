"""ferrymq.jobs: background jobs on FerryMQ (or RabbitMQ, unchanged)."""
