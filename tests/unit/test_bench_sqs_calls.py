"""The generator's SQS bodies are what botocore's service model accepts, and its send bodies are
unique and readable back to their ids."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.validate import ParamValidator

from ferrymq.bench.sqs import calls

URL = "http://127.0.0.1:1/000000000000/q"
MODEL = botocore.session.get_session().get_service_model("sqs")


def _valid(action: str, body: bytes) -> None:
    report = ParamValidator().validate(json.loads(body), MODEL.operation_model(action).input_shape)
    assert not report.has_errors(), report.generate_report()


def test_every_body_the_generator_sends_validates_against_botocores_sqs_model() -> None:
    sends = calls.SendBatches(URL, "p0l1", 100)
    _valid("SendMessageBatch", sends.next())
    _valid("ReceiveMessage", calls.receive(URL, 20, visibility_s=30))
    _valid("DeleteMessageBatch", calls.delete_batch(URL, ["a", "b+/="]))
    _valid("CreateQueue", calls.create_queue("q", {"VisibilityTimeout": "120"}))
    _valid("GetQueueAttributes", calls.depth_query(URL))
    _valid("DeleteQueue", calls.queue_only(URL))
    assert MODEL.metadata["protocol"] == "json" and MODEL.metadata["targetPrefix"] == "AmazonSQS"


def test_send_bodies_are_unique_sized_and_map_back_to_their_ids() -> None:
    sends = calls.SendBatches(URL, "p0l1", 100)
    bodies = [e["MessageBody"] for _ in range(3) for e in json.loads(sends.next())["Entries"]]
    assert len(set(bodies)) == 30 == sends.count and {len(b) for b in bodies} == {100}
    assert [calls.message_id(b) for b in bodies[:2]] == ["p0l1-0000000000", "p0l1-0000000001"]
    with pytest.raises(ValueError):
        calls.SendBatches(URL, "p0-l1", 100)


def test_a_batch_reply_with_a_failed_entry_raises() -> None:
    assert calls.batch_done(b'{"Successful":[{"Id":"0"}],"Failed":[]}', 1) == 1
    with pytest.raises(calls.CallError):
        calls.batch_done(b'{"Successful":[],"Failed":[{"Id":"0","Code":"X","SenderFault":true}]}', 1)
    with pytest.raises(calls.CallError):
        calls.batch_done(b'{"Successful":[{"Id":"0"}]}', 2)
