"""Celery and kombu over SQS to a broker with an access key configured: every request must carry
a valid Signature V4, and the worker's own pycurl client (not boto3's) signs its receives and
deletes."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import kombu
import pytest
from botocore.exceptions import ClientError

from ferrymq.config import AwsAccessKey
from ferrymq.testing import EmbeddedBroker
from tests.compat.celery_sqs_app import TRANSPORT_OPTIONS, broker_url, make_app, no_hub, worker

KEY_ID, SECRET = "AKIAFERRYCELERY00001", "celery/secret+1"


@pytest.fixture(scope="module")
def keyed() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(aws_access_keys=[AwsAccessKey(KEY_ID, SECRET, "guest", "/")]) as broker:
        yield broker


def test_celery_worker_signs_its_async_sqs_requests_for_a_broker_with_access_keys(keyed):
    app = make_app(broker_url(keyed, KEY_ID, quote(SECRET, safe="")))
    try:
        with worker(app):
            assert app.tasks["ferry.add"].delay(20, 22).get(timeout=20) == 42
    finally:
        app.close()


def test_kombu_with_a_wrong_secret_is_refused_with_signature_does_not_match(keyed):
    conn = kombu.Connection(broker_url(keyed, KEY_ID, "not-the-secret"), transport_options=TRANSPORT_OPTIONS)
    with no_hub(), conn, pytest.raises(ClientError) as refused:
        conn.SimpleQueue("ferry-kombu-unsigned").put({"n": 1})
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
