"""What every SNS action is given: the SQS endpoint's context for the same caller (the queues
``sqs`` subscriptions deliver to, and the wait for the group commit), the SNS state, and the
topic lookups with SNS's errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ferrymq.core.exchange import Exchange
from ferrymq.core.vhost import VHost
from ferrymq.http.sns.state import SnsState
from ferrymq.http.sqs.context import Context as SqsContext
from ferrymq.protocols.sns import names
from ferrymq.protocols.sns.topics import Topic


@dataclass(slots=True)
class Context:
    sqs: SqsContext
    state: SnsState

    @property
    def vhost(self) -> VHost:
        return self.sqs.vhost

    @property
    def account(self) -> str:
        return self.sqs.account

    @property
    def region(self) -> str:
        return self.sqs.region

    @property
    def base_url(self) -> str:
        return self.sqs.base_url

    def topic_arn(self, name: str) -> str:
        return names.topic_arn(self.region, self.account, name)

    def find(self, name: str) -> tuple[Exchange, Topic] | None:
        ex = self.vhost.exchanges.get(name)
        if ex is None:
            return None
        topic = self.state.topic(ex)
        return None if topic is None else (ex, topic)

    def topic(self, params: dict[str, Any], key: str = "TopicArn") -> tuple[Exchange, Topic]:
        """The topic the parameter ``key`` names; SNS's NotFound when there is none."""
        value = params.get(key)
        if value is None or value == "":
            raise names.invalid_parameter(key, "No value for required parameter")
        found = self.find(names.parse_topic_arn(value, self.region, self.account, key))
        if found is None:
            raise names.not_found("Topic")
        return found

    def save(self, ex: Exchange, topic: Topic) -> None:
        self.state.save(self.vhost, ex, topic)

    def now_ms(self) -> int:
        return self.sqs.now_ms()

    def new_id(self) -> str:
        """A random UUID (version 4) from the broker's seeded source: message and subscription ids."""
        bits = self.sqs.plane.broker.rng.getrandbits(128)
        return str(uuid.UUID(int=bits, version=4))

    async def stored(self) -> None:
        await self.sqs.stored()
