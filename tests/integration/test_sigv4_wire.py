"""SigV4 over a real socket: boto3 and the AWS CLI send to an aiohttp server (the HTTP stack the
broker's SQS endpoint runs on) whose handler verifies exactly as the endpoint does: the raw path,
the raw query string, aiohttp's headers and the body bytes. This pins down which aiohttp accessors
carry the request as it was signed (``rel_url.raw_path`` and ``rel_url.raw_query_string``; the
decoded ``path`` and ``query_string`` would not verify)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from aiohttp import web
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from ferrymq.protocols.aws.sigv4 import SignatureError, verify_request

KEY, SECRET = "AKIAFERRYMQWIRETEST1", "wire/secret+with=odd/chars"
AWS_CLI = Path(sys.executable).with_name("aws")


async def handle(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        identity = verify_request(request.method, request.rel_url.raw_path, request.rel_url.raw_query_string,
                                  request.headers, body, now_ms=int(time.time() * 1000),
                                  secret_for={KEY: SECRET}.get, service="sqs")
    except SignatureError as error:
        return web.json_response({"__type": error.code, "message": error.message}, status=error.status,
                                 headers={"x-amzn-query-error": f"{error.code};Sender"})
    return web.json_response({"QueueUrls": [f"http://x/{identity.access_key_id}/{identity.region}"]})


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def sqs(endpoint: str, secret: str = SECRET, key: str = KEY) -> object:
    return boto3.client("sqs", endpoint_url=endpoint, region_name="ap-south-1",
                        aws_access_key_id=key, aws_secret_access_key=secret)


def test_boto3_requests_verify_over_a_socket(endpoint: str) -> None:
    client = sqs(endpoint)
    reply = client.list_queues(QueueNamePrefix="orders and/more+é")  # type: ignore[attr-defined]
    assert reply["QueueUrls"] == [f"http://x/{KEY}/ap-south-1"]


def test_presigned_url_to_a_queue_path_needing_encoding_verifies_over_a_socket(endpoint: str) -> None:
    request = AWSRequest("GET", endpoint + "/000000000000/q%20x%3Ay", params={
        "Action": "ReceiveMessage", "Version": "2012-11-05", "AttributeName.1": "All", "Tag": "a b/c+d"})
    SigV4QueryAuth(Credentials(KEY, SECRET), "sqs", "us-east-2", expires=60).add_auth(request)
    url = request.prepare().url
    assert "%20x%3Ay?" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert json.loads(reply.read())["QueueUrls"] == [f"http://x/{KEY}/us-east-2"]
    tampered = url.replace("Tag=a", "Tag=b")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(tampered, timeout=10)
    assert caught.value.code == 403


def test_boto3_with_a_wrong_secret_gets_signature_does_not_match(endpoint: str) -> None:
    with pytest.raises(ClientError) as caught:
        sqs(endpoint, secret="wrong").list_queues()  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_boto3_with_an_unknown_key_gets_invalid_client_token_id(endpoint: str) -> None:
    with pytest.raises(ClientError) as caught:
        sqs(endpoint, key="AKIANOBODY").list_queues()  # type: ignore[attr-defined]
    assert caught.value.response["Error"]["Code"] == "InvalidClientTokenId"


@pytest.mark.skipif(not AWS_CLI.exists(), reason="awscli not installed beside this Python")
def test_aws_cli_requests_verify_over_a_socket(endpoint: str, tmp_path: Path) -> None:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_DEFAULT_REGION": "eu-north-1", "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    command = [str(AWS_CLI), "sqs", "list-queues", "--endpoint-url", endpoint, "--output", "json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["QueueUrls"] == [f"http://x/{KEY}/eu-north-1"]
