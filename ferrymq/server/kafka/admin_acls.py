"""DescribeAcls (29), CreateAcls (30), DeleteAcls (31) as Kafka answers them with no authorizer
configured: SECURITY_DISABLED, with Kafka's messages. A module of its own so that the Kafka
permissions work can replace these handlers with ones backed by FerryMQ's permissions.
"""

from __future__ import annotations

from typing import Any

from ferrymq.protocols.kafka import errors, versions
from ferrymq.server.kafka.connection import KafkaConnection, Slot
from ferrymq.server.kafka.handlers import Handler, decoded, reply

DESCRIBE_MESSAGE = "No Authorizer is configured on the broker"  # DescribeAcls' own wording
CHANGE_MESSAGE = "No Authorizer is configured."  # CreateAcls and DeleteAcls (SecurityDisabledException)


class NoAuthorizerAclApis:
    def handlers(self) -> dict[int, Handler]:
        return {versions.DESCRIBE_ACLS: decoded(self.describe_acls),
                versions.CREATE_ACLS: decoded(self.create_acls),
                versions.DELETE_ACLS: decoded(self.delete_acls)}

    def describe_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        reply(slot, {"throttle_time": 0, "error_code": errors.SECURITY_DISABLED,
                     "error_message": DESCRIBE_MESSAGE, "resources": []})

    def create_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        results = [{"error_code": errors.SECURITY_DISABLED, "error_message": CHANGE_MESSAGE}
                   for _ in req.creations]
        reply(slot, {"throttle_time": 0, "results": results})

    def delete_acls(self, conn: KafkaConnection, slot: Slot, req: Any) -> None:
        results = [{"error_code": errors.SECURITY_DISABLED, "error_message": CHANGE_MESSAGE,
                    "matching_acls": []} for _ in req.filters]
        reply(slot, {"throttle_time": 0, "filter_results": results})
