"""SQS and SNS targets: the SQS JSON 1.0 decoder, and the query forms both services accept, each
followed by the parameter readers that need no broker (queue attributes, receipt handles, URLs).

The protocol's own error: AwsError (a 4xx with ``__type`` / ``x-amzn-query-error``); anything else
escaping would be the endpoint's 500.
"""

from __future__ import annotations

import json
from typing import Any

from ferrymq.fuzz.target import Target
from ferrymq.protocols.aws import query
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sns import codec as sns_codec
from ferrymq.protocols.sqs import codec, names, queue_attributes, receipts

_ACCOUNT = "000000000000"


def sqs_json_one_input(data: bytes) -> None:
    """``X-Amz-Target`` up to the first newline, the body after it."""
    target, _, body = data.partition(b"\n")
    try:
        request = codec.decode_json(target.decode("latin-1"), body)
        _parameters(request.params)
    except AwsError:
        return


def _parameters(params: dict[str, Any]) -> None:
    """What the actions read first, whichever action it is."""
    name = params.get("QueueName")
    url = params.get("QueueUrl")
    if isinstance(url, str):
        name = names.name_from_url(url, _ACCOUNT)
    if isinstance(name, str):
        names.check_name(name)
        attributes = params.get("Attributes")
        if isinstance(attributes, dict):
            queue_attributes.validate(attributes, name, creating=True)
    for entry in [params, *(e for e in query.as_list(params.get("Entries")) if isinstance(e, dict))]:
        if "ReceiptHandle" in entry:
            receipts.decode(entry["ReceiptHandle"])


def sqs_json_seeds() -> list[bytes]:
    bodies = [
        ("CreateQueue", {"QueueName": "jobs.fifo", "Attributes": {
            "FifoQueue": "true", "VisibilityTimeout": "30", "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": "arn:aws:sqs:us-east-1:000000000000:dlq", "maxReceiveCount": 3})}}),
        ("SendMessage", {"QueueUrl": f"http://127.0.0.1:9324/{_ACCOUNT}/q", "MessageBody": "hello",
                         "DelaySeconds": 0, "MessageAttributes": {"a": {"DataType": "String",
                                                                        "StringValue": "v"}}}),
        ("DeleteMessageBatch", {"QueueUrl": f"http://h/{_ACCOUNT}/q", "Entries": [
            {"Id": "1", "ReceiptHandle": receipts.encode(receipts.Receipt("boot", 7, "q"))}]}),
        ("ReceiveMessage", {"QueueUrl": f"http://h/{_ACCOUNT}/q", "MaxNumberOfMessages": 10,
                            "AttributeNames": ["All"], "WaitTimeSeconds": 0}),
        ("SetQueueAttributes", {"QueueUrl": f"http://h/{_ACCOUNT}/q", "Attributes": {"Policy": "{}"}}),
    ]
    return [f"AmazonSQS.{action}\n".encode() + json.dumps(body).encode() for action, body in bodies]


def query_one_input(data: bytes) -> None:
    """A form-encoded body, read as SQS's query protocol and as SNS's."""
    try:
        form = query.parse_form(data)
    except AwsError:
        return
    for decode in (_sqs_query, sns_codec.decode):
        try:
            decode(form)
        except AwsError:
            continue


def _sqs_query(form: dict[str, str]) -> None:
    _parameters(codec.decode_query(form).params)


def query_seeds() -> list[bytes]:
    return [
        b"Action=SendMessageBatch&QueueUrl=http%3A%2F%2Fh%2F000000000000%2Fq&SendMessageBatchRequestEntry"
        b".1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=x&SendMessageBatchRequestEntry.1."
        b"MessageAttribute.1.Name=k&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String",
        b"Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=5&Version=2012-11-05",
        b"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Message=hi&MessageAttributes"
        b".entry.1.Name=n&MessageAttributes.entry.1.Value.DataType=Number&MessageAttributes.entry.1.Value."
        b"StringValue=5",
        b"Action=Subscribe&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A000000000000%3At&Protocol=sqs&Attributes."
        b"entry.1.key=RawMessageDelivery&Attributes.entry.1.value=true",
    ]


TARGETS = [
    Target("sqs-json", sqs_json_one_input, sqs_json_seeds, "AwsError"),
    Target("aws-query", query_one_input, query_seeds, "AwsError"),
]
