"""What every SQS action is given: the broker, the endpoint's state, the caller's vhost and account,
and how to read its parameters with AWS's errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.queue import Queue
from ferrymq.core.vhost import VHost
from ferrymq.http.plane import Plane
from ferrymq.http.sqs.state import SqsState
from ferrymq.protocols.aws.errors import AwsError, invalid, missing
from ferrymq.protocols.sqs import names


@dataclass(slots=True)
class Context:
    plane: Plane
    state: SqsState
    vhost: VHost
    account: str
    region: str
    base_url: str  # scheme://host:port as the client addressed us (queue URLs are built on it)
    user: str
    gone: Callable[[], bool] = field(default=lambda: False)  # the caller hung up (a long poll's end)

    def url(self, name: str) -> str:
        return names.queue_url(self.base_url, self.account, name)

    def arn(self, name: str) -> str:
        return names.queue_arn(self.region, self.account, name)

    def queue(self, params: dict[str, Any]) -> Queue:
        """The queue the request's QueueUrl names; AWS's NonExistentQueue when there is none."""
        name = names.name_from_url(params.get("QueueUrl"), self.account)  # type: ignore[arg-type]
        q = self.vhost.queues.get(name)
        if q is None or q.deleted or q.exclusive_owner is not None:
            raise AwsError("QueueDoesNotExist", "The specified queue does not exist.")
        return q

    def now_ms(self) -> int:
        return self.plane.clock.now_ms()

    def mono_ms(self) -> int:
        return self.plane.clock.monotonic_ms()

    async def stored(self) -> None:
        """Wait until the group commit covering this turn's writes is on disk (fsync before reply)."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def release(ok: bool) -> None:
            if not done.done():
                done.set_result(ok)
        self.plane.commit.hold(release)
        self.plane.end_turn()
        if not await done:
            raise AwsError("InternalFailure", "The broker could not store the request; retry it.")


def text(params: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = params.get(key)
    if value is None:
        if required:
            raise missing(key)
        return None
    if not isinstance(value, str):
        raise invalid(f"Value {value!r} for parameter {key} is invalid. Reason: must be a string.")
    return value


def integer(params: dict[str, Any], key: str, low: int, high: int, default: int | None) -> int | None:
    value = params.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not low <= number <= high:
        raise invalid(f"Value {value} for parameter {key} is invalid. Reason: must be between {low} "
                      f"and {high}.")
    return number


def names_list(params: dict[str, Any], key: str) -> list[str]:
    value = params.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{key} must be a list of strings.")
    return value
