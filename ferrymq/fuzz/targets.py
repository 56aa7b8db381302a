"""Every fuzz target by name, in the order ``make fuzz`` soaks them."""

from __future__ import annotations

from ferrymq.fuzz import amqp, aws, http_json, kafka
from ferrymq.fuzz.target import Target

TARGETS: dict[str, Target] = {t.name: t for t in (*amqp.TARGETS, *kafka.TARGETS, *aws.TARGETS,
                                                  *http_json.TARGETS)}
