"""SNS requests in, replies out: a form with ``Action`` and ``Version=2010-03-31`` (boto3's ``sns``
client speaks only the query protocol), XML replies in SNS's namespace with lists wrapped in
``<member>`` and maps written ``<entry><key/><value/></entry>``.

Requests are mapped onto plain parameters once (maps as dicts, lists as lists, message attributes as
the ``{DataType, StringValue | BinaryValue}`` structures ferrymq.protocols.aws.attributes reads).
"""

from __future__ import annotations

from typing import Any

from ferrymq.protocols.aws import query, xml
from ferrymq.protocols.aws.errors import AwsError

VERSION = "2010-03-31"
NAMESPACE = "http://sns.amazonaws.com/doc/2010-03-31/"
SERVICE = "sns"
_MAPS = {"Attributes": ("key", "value"), "MessageAttributes": ("Name", "Value")}
_LISTS = ("Tags", "TagKeys", "PublishBatchRequestEntries", "AWSAccountId", "ActionName")
_EMPTY_RESULT = frozenset({"TagResource", "UntagResource"})  # botocore wants <XResult/> though empty
HINTS = xml.Hints(maps={"Attributes": ("entry", "key", "value")}, wrapped=frozenset({"Attributes"}))


def is_sns_form(form: dict[str, str], credential_scope: str = "") -> bool:
    """A query-protocol form for SNS: its Version, or (no Version) a SigV4 scope naming ``sns``."""
    if "Action" not in form:
        return False
    version = form.get("Version")
    return version == VERSION or (version is None and f"/{SERVICE}/" in credential_scope)


def credential_scope(authorization: str) -> str:
    """``Credential=AKID/20261203/us-east-1/sns/aws4_request`` -> its scope, or ""."""
    _, found, rest = authorization.partition("Credential=")
    return rest.split(",", 1)[0] if found else ""


def decode(form: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(action, parameters) of an SNS form."""
    action = form.get("Action", "")
    if not action:
        raise AwsError("InvalidAction", "The request has no Action.")
    params = {k: v for k, v in form.items() if k not in ("Action", "Version")}
    return action, parameters(query.nest(params))


def parameters(tree: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if key in _MAPS:
            out[key] = query.as_map(value, *_MAPS[key])
        elif key in _LISTS:
            out[key] = [parameters(v) if isinstance(v, dict) else v for v in query.as_list(value)]
        else:
            out[key] = value
    return out


def encode(action: str, result: dict[str, Any], request_id: str) -> bytes:
    body = xml.response(action, result, NAMESPACE, request_id, HINTS)
    if not result and action in _EMPTY_RESULT:
        body = body.replace(b"<ResponseMetadata>", f"<{action}Result/><ResponseMetadata>".encode(), 1)
    return body


def encode_error(err: AwsError, request_id: str) -> bytes:
    return xml.error_response(err, NAMESPACE, request_id)
