"""Fuzzing the SQS front end. Rules checked on every example:

1. the decoders (JSON 1.0 and query forms) raise nothing but AwsError, whatever the bytes;
2. through a live endpoint, any action with any parameters gets a 200 or an AWS error (4xx with
   ``x-amzn-query-error``), never a 500, and the broker keeps answering;
3. the planted-bug test shows rule 1's check catches a decoder that leaks another exception.

FERRYMQ_FUZZ_EXAMPLES raises the bound.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ferrymq.http.sqs.endpoint import ACTIONS
from ferrymq.protocols.aws import query
from ferrymq.protocols.aws.errors import AwsError
from ferrymq.protocols.sqs import codec
from ferrymq.testing import EmbeddedBroker

EXAMPLES = int(os.environ.get("FERRYMQ_FUZZ_EXAMPLES", "150"))
KEYS = ["QueueUrl", "QueueName", "MessageBody", "ReceiptHandle", "Entries", "Attributes",
        "MessageAttributes", "AttributeNames", "MaxNumberOfMessages", "VisibilityTimeout",
        "WaitTimeSeconds", "DelaySeconds", "MessageGroupId", "MessageDeduplicationId", "Tags",
        "TagKeys", "Label", "AWSAccountIds", "Actions", "NextToken", "MaxResults", "Id"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 50_000), st.text(max_size=30),
                    st.just("http://127.0.0.1/000000000000/fuzzq"), st.just("fuzzq"))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from([*KEYS, "DataType", "StringValue"]),
                                                 inner, max_size=4)), max_leaves=12)
params = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def decoders_raise_only_aws_errors(decode: Callable[[bytes], Any], data: bytes) -> None:
    try:
        decode(data)
    except AwsError:
        pass


def _query(data: bytes) -> Any:
    return codec.decode_query(query.parse_form(data))


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.binary(max_size=300), st.text(max_size=40))
def test_decoders_raise_nothing_but_aws_errors(data: bytes, target: str) -> None:
    decoders_raise_only_aws_errors(lambda b: codec.decode_json("AmazonSQS." + target, b), data)
    decoders_raise_only_aws_errors(_query, data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.dictionaries(st.text(st.sampled_from("AB.12xN"), max_size=12), st.text(max_size=8), max_size=8))
def test_any_query_form_nests_into_params(form: dict[str, str]) -> None:
    decoders_raise_only_aws_errors(lambda _: codec.decode_query({"Action": "X", **form}), b"")


def test_the_decoder_check_catches_a_leaking_decoder() -> None:
    def broken(data: bytes) -> Any:
        raise KeyError("planted")
    with pytest.raises(KeyError):
        decoders_raise_only_aws_errors(broken, b"x")


@pytest.fixture(scope="module")
def endpoint() -> Any:
    with EmbeddedBroker() as broker:
        session = requests.Session()
        session.post(broker.http_url + "/", timeout=5, data=json.dumps({"QueueName": "fuzzq"}),
                     headers={"X-Amz-Target": "AmazonSQS.CreateQueue"})
        yield broker.http_url, session


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(sorted(ACTIONS)), params)
def test_any_action_with_any_parameters_gets_an_aws_answer_never_a_500(
        endpoint: Any, action: str, body: dict[str, Any]) -> None:
    url, session = endpoint
    if action == "ReceiveMessage":
        body["WaitTimeSeconds"] = 0  # a long poll would only slow the run
    reply = session.post(url + "/", data=json.dumps(body), timeout=10, headers={
        "X-Amz-Target": f"AmazonSQS.{action}", "Content-Type": "application/x-amz-json-1.0"})
    assert reply.status_code != 500, (action, body, reply.text)
    if reply.status_code != 200:
        assert reply.status_code < 500 and "x-amzn-query-error" in reply.headers, (action, body)
        assert "__type" in reply.json()
