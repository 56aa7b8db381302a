"""ferrymq.jobs: background jobs on FerryMQ (or RabbitMQ, unchanged).

    from ferrymq.jobs import App, Retry
    app = App("amqp://guest:guest@localhost:5672/%2F")

    @app.job(queue="critical", retries=5, timeout="30s")
    def process_payment(order_id: str) -> None: ...

    process_payment.send("o-42", delay="10m")

and ``ferrymq worker myapp:app --processes 2 --concurrency 16``.
"""

from ferrymq.jobs.app import App
from ferrymq.jobs.context import JobContext, current
from ferrymq.jobs.errors import (
    Defer,
    Fatal,
    JobError,
    Retry,
    SerializationError,
    Skip,
    SoftTimeLimitExceeded,
    TimeLimitExceeded,
)
from ferrymq.jobs.job import Job
from ferrymq.jobs.message import JobMessage
from ferrymq.jobs.middleware import Middleware

__all__ = ["App", "Defer", "Fatal", "Job", "JobContext", "JobError", "JobMessage", "Middleware", "Retry",
           "SerializationError", "Skip", "SoftTimeLimitExceeded", "TimeLimitExceeded", "current"]
