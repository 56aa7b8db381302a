"""Message attributes (SQS and SNS): validated as AWS validates them, digested as AWS digests them.

``MD5OfMessageAttributes``: for each attribute in name order, the name, the data type and the value,
each as a 4-byte big-endian length and its bytes, with a transport byte (1 string, 2 binary) before
the value; MD5 over it all. SDKs recompute it and refuse a reply that differs (botocore, the Java SDK).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

from ferrymq.protocols.aws.errors import AwsError, invalid

MAX_ATTRIBUTES = 10
NAME_MAX = 256
TYPE_MAX = 256
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_RESERVED = ("aws.", "amazon.")
# What an SQS body (and a String value) may hold: XML 1.0's characters.
_BAD_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
STRING, BINARY = 1, 2


@dataclass(frozen=True, slots=True)
class Attribute:
    data_type: str
    value: str | bytes  # str for String/Number types, bytes for Binary types

    @property
    def size(self) -> int:
        raw = self.value if isinstance(self.value, bytes) else self.value.encode()
        return len(self.data_type.encode()) + len(raw)

    def to_json(self) -> dict[str, str]:
        if isinstance(self.value, bytes):
            return {"DataType": self.data_type, "BinaryValue": base64.b64encode(self.value).decode()}
        return {"DataType": self.data_type, "StringValue": self.value}


def bad_character(text: str) -> str | None:
    """The first character AWS refuses in a body or string value, or None."""
    found = _BAD_CHAR.search(text)
    return found.group() if found else None


def check_body(body: str) -> None:
    bad = bad_character(body)
    if bad is not None:
        raise AwsError("InvalidMessageContents",
                       f"Invalid binary character '#x{ord(bad):X}' was found in the message body, the "
                       "set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to "
                       "#xFFFD | #x10000 to #x10FFFF")


def check_name(name: str, what: str = "message attribute") -> None:
    if not name or len(name) > NAME_MAX or not _NAME.fullmatch(name):
        raise invalid(f"The {what} name '{name}' is invalid: names are 1 to {NAME_MAX} characters "
                      "of A-Z, a-z, 0-9, underscore, hyphen and period.")
    if name.lower().startswith(_RESERVED) or name.startswith(".") or name.endswith(".") \
            or ".." in name:
        raise invalid(f"The {what} name '{name}' is invalid: it may not start with 'AWS.' or "
                      "'Amazon.', start or end with a period, or hold two periods in a row.")


def parse_attribute(name: str, raw: Any) -> Attribute:
    """One attribute from the request's JSON shape {DataType, StringValue | BinaryValue}."""
    if not isinstance(raw, dict):
        raise invalid(f"The message attribute '{name}' must be a structure.")
    data_type = raw.get("DataType")
    if not isinstance(data_type, str) or not data_type:
        raise invalid(f"The message attribute '{name}' must contain non-empty message attribute type.")
    base = data_type.split(".", 1)[0]
    if base not in ("String", "Number", "Binary") or len(data_type) > TYPE_MAX:
        raise invalid(f"The type of message attribute '{name}' is invalid. You must use only the "
                      "following supported type prefixes: Binary, Number, String.")
    if base == "Binary":
        return Attribute(data_type, _binary(name, raw.get("BinaryValue")))
    value = raw.get("StringValue")
    if not isinstance(value, str) or value == "":
        raise invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                      f"for message attribute type '{data_type}'.")
    if base == "Number" and not _NUMBER.fullmatch(value.strip()):
        raise invalid(f"Can't cast the value of message attribute '{name}' to a number.")
    if bad_character(value) is not None:
        raise AwsError("InvalidMessageContents",
                       f"Invalid characters found in the value of message attribute '{name}'.")
    return Attribute(data_type, value)


def _binary(name: str, value: Any) -> bytes:
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"The binary value of message attribute '{name}' is not valid base64.") \
                from None
    else:
        raw = b""
    if not raw:
        raise invalid(f"The message attribute '{name}' must contain non-empty message attribute value "
                      "for message attribute type 'Binary'.")
    return raw


def parse_attributes(raw: Any, what: str = "message attribute") -> dict[str, Attribute]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise invalid("MessageAttributes must be a map.")
    if len(raw) > MAX_ATTRIBUTES:
        raise invalid(f"Number of message attributes [{len(raw)}] exceeds the allowed maximum "
                      f"[{MAX_ATTRIBUTES}].")
    out = {}
    for name, value in raw.items():
        check_name(str(name), what)
        out[str(name)] = parse_attribute(str(name), value)
    return out


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_attributes(attributes: dict[str, Attribute]) -> str | None:
    """AWS's digest of a message's attributes (None when it has none: the field is left out)."""
    if not attributes:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attr = attributes[name]
        digest.update(_field(name.encode()) + _field(attr.data_type.encode()))
        if isinstance(attr.value, bytes):
            digest.update(bytes([BINARY]) + _field(attr.value))
        else:
            digest.update(bytes([STRING]) + _field(attr.value.encode()))
    return digest.hexdigest()


def md5_of_body(body: str | bytes) -> str:
    raw = body.encode() if isinstance(body, str) else body
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()
