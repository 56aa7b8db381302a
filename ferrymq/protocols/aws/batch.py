"""Batch entry ids, as SQS and SNS both check them: 1 to 80 of A-Z, a-z, 0-9, hyphen, underscore,
distinct within the request. Each service names the errors (its own shapes and texts)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ferrymq.protocols.aws.errors import AwsError

BATCH_ID = re.compile(r"[A-Za-z0-9_-]{1,80}")
BAD_ID_TEXT = ("A batch entry id can only contain alphanumeric characters, hyphens and underscores. "
               "It can be at most 80 letters long.")


def check_ids(entries: list[dict[str, Any]], bad_id: AwsError,
              repeated: Callable[[str], AwsError]) -> None:
    seen: set[str] = set()
    for entry in entries:
        entry_id = entry.get("Id")
        if not isinstance(entry_id, str) or not BATCH_ID.fullmatch(entry_id):
            raise bad_id
        if entry_id in seen:
            raise repeated(entry_id)
        seen.add(entry_id)
