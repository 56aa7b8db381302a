"""The SQS query protocol (form in, XML out) that older SDKs and tools speak, over a real socket."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import requests

from ferrymq.protocols.aws.attributes import Attribute, md5_of_attributes
from ferrymq.testing import EmbeddedBroker

NS = {"q": "http://queue.amazonaws.com/doc/2012-11-05/"}


def call(ferry: EmbeddedBroker, path: str = "/", **form: Any) -> tuple[int, ET.Element]:
    reply = requests.post(ferry.http_url + path, data={"Version": "2012-11-05", **form}, timeout=10)
    assert reply.headers["Content-Type"].startswith("text/xml")
    return reply.status_code, ET.fromstring(reply.content)


def test_a_queue_made_sent_to_and_read_with_forms_answers_in_xml(ferry: EmbeddedBroker) -> None:
    status, root = call(ferry, Action="CreateQueue", QueueName="formq",
                        **{"Attribute.1.Name": "VisibilityTimeout", "Attribute.1.Value": "20"})
    assert status == 200
    url = root.findtext("q:CreateQueueResult/q:QueueUrl", namespaces=NS)
    assert url and url.endswith("/000000000000/formq")
    assert root.findtext("q:ResponseMetadata/q:RequestId", namespaces=NS)
    status, root = call(ferry, Action="SendMessage", QueueUrl=url, MessageBody="hi <there> & you",
                        **{"MessageAttribute.1.Name": "k", "MessageAttribute.1.Value.DataType": "String",
                           "MessageAttribute.1.Value.StringValue": "v"})
    expected_md5 = md5_of_attributes({"k": Attribute("String", "v")})
    assert root.findtext("q:SendMessageResult/q:MD5OfMessageAttributes", namespaces=NS) == expected_md5
    status, root = call(ferry, Action="ReceiveMessage", QueueUrl=url, **{
        "AttributeName.1": "All", "MessageAttributeName.1": "All", "MaxNumberOfMessages": "10"})
    (msg,) = root.findall("q:ReceiveMessageResult/q:Message", NS)
    assert msg.findtext("q:Body", namespaces=NS) == "hi <there> & you"
    names = {a.findtext("q:Name", namespaces=NS): a.findtext("q:Value", namespaces=NS)
             for a in msg.findall("q:Attribute", NS)}
    assert names["ApproximateReceiveCount"] == "1"
    (attr,) = msg.findall("q:MessageAttribute", NS)
    assert attr.findtext("q:Value/q:StringValue", namespaces=NS) == "v"
    handle = msg.findtext("q:ReceiptHandle", namespaces=NS)
    status, root = call(ferry, Action="DeleteMessageBatch", QueueUrl=url, **{
        "DeleteMessageBatchRequestEntry.1.Id": "a", "DeleteMessageBatchRequestEntry.1.ReceiptHandle": handle})
    assert root.findtext("q:DeleteMessageBatchResult/q:DeleteMessageBatchResultEntry/q:Id",
                         namespaces=NS) == "a"


def test_a_form_posted_to_the_queue_url_acts_on_that_queue(ferry: EmbeddedBroker) -> None:
    call(ferry, Action="CreateQueue", QueueName="pathq")
    status, root = call(ferry, "/000000000000/pathq", Action="GetQueueAttributes",
                        **{"AttributeName.1": "VisibilityTimeout"})
    assert status == 200
    assert root.findtext("q:GetQueueAttributesResult/q:Attribute/q:Value", namespaces=NS) == "30"


def test_wrong_forms_get_the_xml_error_response(ferry: EmbeddedBroker) -> None:
    for form, status, code in (({"Action": "Nope"}, 400, "InvalidAction"),
                               ({"Action": "GetQueueUrl", "QueueName": "missing"}, 400,
                                "AWS.SimpleQueueService.NonExistentQueue"),
                               ({"Action": "SendMessage"}, 400, "MissingParameter")):
        got, root = call(ferry, **form)
        assert got == status
        assert root.findtext("q:Error/q:Code", namespaces=NS) == code
        assert root.findtext("q:Error/q:Type", namespaces=NS) == "Sender"
