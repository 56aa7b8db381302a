"""A job on the wire: one AMQP message whose body is a JSON object.

Everything the worker needs is in the body, so a worker decodes a job with one ``json.loads``
and never parses AMQP properties. The properties repeat what operators look at (message id,
job name as ``type``, priority, persistent delivery mode), so the management API, the dashboard
and a RabbitMQ console show jobs without knowing this format.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ferrymq.jobs.errors import SerializationError
from ferrymq.protocols.amqp.properties import Properties, encode_properties

FORMAT = 1  # body field "v": bumped when the body's meaning changes
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class JobMessage:
    """One run of one job. ``attempt`` is 0 on the first run; ``eta_ms`` is when it may start
    (wall clock ms, None = now); ``extra`` carries what middleware adds (it travels with the job)."""

    id: str
    job: str
    queue: str
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    key: str | None = None
    tenant: str | None = None
    priority: int = 0
    enqueued_ms: int = 0
    eta_ms: int | None = None
    workflow: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None  # set by send() when a middleware dropped the send; not on the wire

    def body(self) -> bytes:
        """The JSON body; arguments JSON cannot carry raise SerializationError."""
        doc: dict[str, Any] = {"v": FORMAT, "id": self.id, "job": self.job, "queue": self.queue,
                               "args": self.args, "kwargs": self.kwargs, "attempt": self.attempt,
                               "enq": self.enqueued_ms}
        for name, value in (("key", self.key), ("tenant", self.tenant), ("eta", self.eta_ms),
                            ("wf", self.workflow), ("extra", self.extra or None)):
            if value is not None:
                doc[name] = value
        if self.priority:
            doc["priority"] = self.priority
        try:
            return _dumps(doc).encode()
        except (TypeError, ValueError) as exc:
            raise SerializationError(
                f"job {self.job!r}: arguments must be JSON-serialisable: {exc}") from None

    def properties(self, headers: dict[str, Any] | None = None) -> bytes:
        """The AMQP property section (persistent, with id, name and priority for operators)."""
        return encode_properties(Properties(
            content_type="application/json", headers=headers, delivery_mode=2,
            priority=self.priority or None, message_id=self.id, type=self.job))

    @classmethod
    def from_body(cls, body: bytes) -> JobMessage:
        """Decode a body; anything that is not a job raises ValueError (the worker dead-letters it)."""
        try:
            doc = _loads(body)
            return cls(doc["id"], doc["job"], doc["queue"], doc["args"], doc["kwargs"], doc["attempt"],
                       doc.get("key"), doc.get("tenant"), doc.get("priority", 0), doc["enq"],
                       doc.get("eta"), doc.get("wf"), doc.get("extra") or {})
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a ferrymq.jobs message: {exc}") from None

    def retried(self, attempt: int, extra: dict[str, Any]) -> JobMessage:
        """The same job, next attempt: a new message of the same id."""
        return JobMessage(self.id, self.job, self.queue, self.args, self.kwargs, attempt, self.key,
                          self.tenant, self.priority, self.enqueued_ms, None, self.workflow, extra)
