"""SigV4 verification against botocore as the oracle: whatever botocore's signers produce must verify,
and every change an attacker could make to a signed request must not.

botocore's clock is pinned (``botocore.auth.get_current_datetime``) and the verifier is handed the
same instant, so no test depends on the wall clock. Requests are taken as a server sees them: the
URL's raw path and query, the headers (plus the Host header urllib3 adds), the body bytes.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from ferrymq.protocols.aws import sigv4
from ferrymq.protocols.aws.sigv4 import Identity, SignatureError, verify_request

KEY = "AKIAFERRYMQEXAMPLE01"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SECRETS = {KEY: SECRET, "AKIAOTHER": "another-secret"}
SIGNED_AT = datetime.datetime(2026, 3, 14, 15, 9, 26)  # naive UTC, as botocore's clock returns it
NOW_MS = int(SIGNED_AT.replace(tzinfo=datetime.UTC).timestamp() * 1000)
MINUTE_MS = 60_000
ENDPOINT = "http://127.0.0.1:9324"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}  # as botocore's query serializer


@dataclasses.dataclass
class Wire:
    """A request as the HTTP endpoint receives it."""

    method: str
    path: str
    query: str
    headers: CIMultiDict[str]
    body: bytes


@contextmanager
def pinned_clock(at: datetime.datetime = SIGNED_AT) -> Iterator[None]:
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        yield


def on_the_wire(request: AWSRequest) -> Wire:
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    return Wire(prepared.method, url.path, url.query, wire_headers(prepared.headers.items(), url.netloc),
                body if isinstance(body, bytes) else body.encode())


def wire_headers(items: Any, netloc: str) -> CIMultiDict[str]:
    """As aiohttp hands them over: str values (botocore keeps some as bytes), names repeatable, and
    the Host header urllib3 adds (botocore signs the value it will have)."""
    headers = CIMultiDict((k, v.decode() if isinstance(v, bytes) else v) for k, v in items)
    headers.setdefault("Host", netloc)
    return headers


def sign(method: str = "POST", url: str = ENDPOINT + "/", *, body: Any = b"",
         headers: dict[str, str] | None = None, params: dict[str, str] | None = None,
         secret: str = SECRET, token: str | None = None,
         service: str = "sqs", region: str = "us-east-1", context: dict[str, Any] | None = None) -> Wire:
    request = AWSRequest(method, url, data=body, headers=headers or {}, params=params or {})
    request.context.update(context or {})
    with pinned_clock():
        SigV4Auth(Credentials(KEY, secret, token), service, region).add_auth(request)
    return on_the_wire(request)


def presign(url: str = ENDPOINT + "/", *, params: dict[str, str] | None = None, expires: int = 300,
            method: str = "GET", secret: str = SECRET) -> Wire:
    request = AWSRequest(method, url, params=params or {"Action": "ListQueues", "Version": "2012-11-05"})
    with pinned_clock():
        SigV4QueryAuth(Credentials(KEY, secret), "sqs", "us-east-1", expires=expires).add_auth(request)
    return on_the_wire(request)


def json_call(body: bytes = b'{"QueueUrl":"q","MessageBody":"hi"}') -> Wire:
    return sign(body=body, headers={"X-Amz-Target": "AmazonSQS.SendMessage",
                                    "Content-Type": "application/x-amz-json-1.0"})


def verify(wire: Wire, now_ms: int = NOW_MS, service: str | None = None) -> Identity:
    return verify_request(wire.method, wire.path, wire.query, wire.headers, wire.body,
                          now_ms=now_ms, secret_for=SECRETS.get, service=service)


def refused(wire: Wire, code: str, now_ms: int = NOW_MS, service: str | None = None) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(wire, now_ms, service)
    assert caught.value.code == code, caught.value.message
    return caught.value


def replace_header(wire: Wire, name: str, value: str) -> Wire:
    headers = wire.headers.copy()
    headers[name] = value
    return dataclasses.replace(wire, headers=headers)


# --- botocore-signed requests verify ---------------------------------------------------------------

def test_json_protocol_post_with_x_amz_target_verifies_and_names_key_and_scope() -> None:
    assert verify(json_call()) == Identity(KEY, "us-east-1", "sqs")


def test_query_protocol_form_post_verifies() -> None:
    form = {"Action": "SendMessage", "Version": "2012-11-05", "QueueUrl": ENDPOINT + "/000000000000/q",
            "MessageBody": "a b+c&d=é"}
    wire = sign(url=ENDPOINT + "/000000000000/q", body=form, region="eu-west-3", headers=FORM)
    assert wire.body.startswith(b"Action=SendMessage&")
    assert verify(wire) == Identity(KEY, "eu-west-3", "sqs")


def test_get_with_query_string_needing_encoding_verifies() -> None:
    params = {"Action": "ListQueues", "QueueNamePrefix": "a b/c+d=e&f", "Version": "2012-11-05",
              "Empty": "", "ünï": "€", "z~": "-_.~"}
    assert verify(sign("GET", params=params)).access_key_id == KEY
    in_the_url = ENDPOINT + "/?Version=2012-11-05&Action=ListQueues&QueueNamePrefix=a%2Fb%20c&Flag"
    assert verify(sign("GET", url=in_the_url)).access_key_id == KEY


@pytest.mark.parametrize("path", [
    "/000000000000/my-queue", "/000000000000/q%20with%20spaces", "/a:b/c@d/e$f", "/%E2%82%AC/euro",
    "/a/./b/../c", "//double//slashes/", "/tilde~and;semi,comma", "/plus+sign", "/pct%2Fslash", "",
])
def test_paths_that_need_encoding_verify(path: str) -> None:
    assert verify(sign(url=ENDPOINT + path, body=b"{}")).access_key_id == KEY


def test_presigned_url_verifies_and_excludes_its_own_signature_from_the_canonical_query() -> None:
    wire = presign(params={"Action": "GetQueueUrl", "QueueName": "my queue", "Version": "2012-11-05"})
    assert "X-Amz-Signature=" in wire.query and "Authorization" not in wire.headers
    assert verify(wire) == Identity(KEY, "us-east-1", "sqs")


def test_presigned_url_is_good_until_x_amz_expires_even_past_the_fifteen_minute_window() -> None:
    wire = presign(expires=3600)
    assert verify(wire, NOW_MS + 59 * MINUTE_MS).access_key_id == KEY
    error = refused(wire, "RequestExpired", NOW_MS + 60 * MINUTE_MS + 1000)
    assert error.status == 400


def test_security_token_is_signed_accepted_and_ignored() -> None:
    wire = sign(body=b"{}", token="FQoGZXIvYXdzEXAMPLETOKEN")
    assert wire.headers["X-Amz-Security-Token"] == "FQoGZXIvYXdzEXAMPLETOKEN"
    assert verify(wire).access_key_id == KEY


def test_date_header_dates_a_request_without_x_amz_date() -> None:
    wire = sign(body=b"{}", headers={"Date": "whatever botocore replaces"})
    assert "X-Amz-Date" not in wire.headers and wire.headers["Date"] == "Sat, 14 Mar 2026 15:09:26 -0000"
    assert verify(wire).access_key_id == KEY
    refused(wire, "SignatureDoesNotMatch", NOW_MS + 16 * MINUTE_MS)


def test_unsigned_payload_leaves_the_body_out_of_the_signature() -> None:
    wire = sign(url="https://127.0.0.1:9324/", body=b'{"a":1}', context={"payload_signing_enabled": False})
    assert wire.headers["X-Amz-Content-SHA256"] == "UNSIGNED-PAYLOAD"
    assert verify(dataclasses.replace(wire, body=b'{"a":2}')).access_key_id == KEY


def test_x_amz_content_sha256_must_be_the_hash_of_the_body() -> None:
    body = b'{"QueueUrl":"q"}'
    wire = sign(body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert verify(wire).access_key_id == KEY
    error = refused(dataclasses.replace(wire, body=b'{"QueueUrl":"r"}'), "SignatureDoesNotMatch")
    assert error.message == sigv4.HASH_MISMATCH


def test_a_header_sent_twice_is_signed_with_its_values_joined() -> None:
    request = AWSRequest("POST", ENDPOINT + "/", data=b"{}")
    request.headers["X-Custom"] = "first   value"
    request.headers["X-Custom"] = " second"  # an HTTPMessage appends: the header is sent twice
    with pinned_clock():
        SigV4Auth(Credentials(KEY, SECRET), "sqs", "us-east-1").add_auth(request)
    wire = on_the_wire(request)  # the prepared request keeps one value; the message sent holds both
    wire.headers = wire_headers(request.headers.items(), "127.0.0.1:9324")
    assert wire.headers.getall("X-Custom") == ["first   value", " second"]
    assert verify(wire).access_key_id == KEY


def test_sns_scope_verifies_and_a_service_check_refuses_the_other_service() -> None:
    wire = sign(body={"Action": "Publish", "Message": "m"}, service="sns", headers=FORM)
    assert verify(wire, service="sns") == Identity(KEY, "us-east-1", "sns")
    error = refused(wire, "SignatureDoesNotMatch", service="sqs")
    assert error.message == "Credential should be scoped to correct service: 'sqs'."


# --- tampering, wrong keys, stale dates ------------------------------------------------------------

@pytest.mark.parametrize("tamper", [
    pytest.param(lambda w: dataclasses.replace(w, body=w.body + b" "), id="body"),
    pytest.param(lambda w: replace_header(w, "X-Amz-Target", "AmazonSQS.DeleteQueue"), id="signed-header"),
    pytest.param(lambda w: replace_header(w, "Host", "127.0.0.1:9325"), id="host"),
    pytest.param(lambda w: dataclasses.replace(w, path="/000000000000/other"), id="path"),
    pytest.param(lambda w: dataclasses.replace(w, query="Action=DeleteQueue"), id="query"),
    pytest.param(lambda w: dataclasses.replace(w, method="PUT"), id="method"),
    pytest.param(lambda w: replace_header(w, "X-Amz-Date", "20260314T150927Z"), id="date"),
])
def test_any_tampering_with_a_signed_request_is_signature_does_not_match(tamper: Any) -> None:
    wire = json_call()
    error = refused(tamper(wire), "SignatureDoesNotMatch")
    assert error.status == 403
    assert error.message.startswith(sigv4.MISMATCH)


def test_tampered_presigned_query_is_refused() -> None:
    wire = presign(params={"Action": "GetQueueUrl", "QueueName": "mine", "Version": "2012-11-05"})
    refused(dataclasses.replace(wire, query=wire.query.replace("QueueName=mine", "QueueName=yours")),
            "SignatureDoesNotMatch")


def test_wrong_secret_is_signature_does_not_match_with_what_should_have_been_signed() -> None:
    error = refused(sign(body=b"{}", secret="not-the-secret"), "SignatureDoesNotMatch")
    assert error.status == 403
    assert "The Canonical String for this request should have been\n'POST\n/\n" in error.message
    assert "The String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20260314T150926Z\n" in error.message


def test_unknown_access_key_is_invalid_client_token_id() -> None:
    wire = json_call()
    wire = replace_header(wire, "Authorization", wire.headers["Authorization"].replace(KEY, "AKIANOBODY"))
    error = refused(wire, "InvalidClientTokenId")
    assert (error.status, error.message) == (403, "The security token included in the request is invalid.")


def test_fifteen_minutes_either_way_is_accepted_a_second_more_is_not() -> None:
    wire = json_call()
    assert verify(wire, NOW_MS + 15 * MINUTE_MS).access_key_id == KEY
    assert verify(wire, NOW_MS - 15 * MINUTE_MS).access_key_id == KEY
    old = refused(wire, "SignatureDoesNotMatch", NOW_MS + 15 * MINUTE_MS + 1000)
    assert old.message == ("Signature expired: 20260314T150926Z is now earlier than 20260314T150927Z "
                           "(20260314T152427Z - 15 min.)")
    early = refused(wire, "SignatureDoesNotMatch", NOW_MS - 15 * MINUTE_MS - 1000)
    assert early.message == ("Signature not yet current: 20260314T150926Z is still later than "
                             "20260314T150925Z (20260314T145425Z + 15 min.)")


def test_presigned_url_dated_in_the_future_is_not_yet_current() -> None:
    error = refused(presign(expires=3600), "SignatureDoesNotMatch", NOW_MS - 20 * MINUTE_MS)
    assert error.message.startswith("Signature not yet current")


def test_no_authentication_at_all_is_missing_authentication_token() -> None:
    wire = json_call()
    del wire.headers["Authorization"]
    error = refused(wire, "MissingAuthenticationToken")
    assert error.status == 403
    refused(replace_header(wire, "Authorization", " "), "MissingAuthenticationToken")


def authorization_without(part: str) -> str:
    header = json_call().headers["Authorization"]
    algorithm, _, rest = header.partition(" ")
    return algorithm + " " + ", ".join(p for p in rest.split(", ") if not p.startswith(part + "="))


@pytest.mark.parametrize("part", ["Credential", "SignedHeaders", "Signature"])
def test_authorization_missing_a_component_is_incomplete_signature(part: str) -> None:
    wire = replace_header(json_call(), "Authorization", authorization_without(part))
    error = refused(wire, "IncompleteSignature")
    assert error.status == 400
    assert error.message.startswith(f"Authorization header requires '{part}' parameter. ")
    assert error.message.endswith("Authorization=" + wire.headers["Authorization"])


def test_a_request_without_any_date_is_incomplete_signature() -> None:
    wire = json_call()
    del wire.headers["X-Amz-Date"]
    assert sigv4.NO_DATE in refused(wire, "IncompleteSignature").message


def test_other_authorization_schemes_are_incomplete_signature() -> None:
    wire = replace_header(json_call(), "Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
    assert refused(wire, "IncompleteSignature").message == "Unsupported AWS 'algorithm': 'Basic'"


def with_signed_headers(wire: Wire, signed: str) -> Wire:
    header = wire.headers["Authorization"]
    start = header.index("SignedHeaders=") + len("SignedHeaders=")
    end = header.index(",", start)
    return replace_header(wire, "Authorization", header[:start] + signed + header[end:])


def test_signed_headers_missing_an_entry_that_was_signed_is_signature_does_not_match() -> None:
    wire = json_call()
    assert "x-amz-target" in wire.headers["Authorization"]
    refused(with_signed_headers(wire, "content-type;host;x-amz-date"), "SignatureDoesNotMatch")


def test_signed_headers_without_host_is_incomplete_signature() -> None:
    wire = with_signed_headers(json_call(), "content-type;x-amz-date;x-amz-target")
    assert refused(wire, "IncompleteSignature").message == sigv4.HOST_UNSIGNED


@pytest.mark.parametrize("credential", [
    f"{KEY}/20260314/us-east-1/sqs", "justakey", f"{KEY}//us-east-1/sqs/aws4_request"])
def test_malformed_credential_is_incomplete_signature(credential: str) -> None:
    wire = json_call()
    header = wire.headers["Authorization"]
    scope = f"{KEY}/20260314/us-east-1/sqs/aws4_request"
    refused(replace_header(wire, "Authorization", header.replace(scope, credential)), "IncompleteSignature")


def test_credential_scope_dated_another_day_is_signature_does_not_match() -> None:
    wire = json_call()
    header = wire.headers["Authorization"].replace("/20260314/", "/20260313/")
    error = refused(replace_header(wire, "Authorization", header), "SignatureDoesNotMatch")
    assert error.message.startswith("Date in Credential scope does not match YYYYMMDD")


def test_malformed_x_amz_date_is_incomplete_signature() -> None:
    wire = replace_header(json_call(), "X-Amz-Date", "2026-03-14T15:09:26Z")
    assert "ISO-8601 'basic format'" in refused(wire, "IncompleteSignature").message


def test_presigned_url_without_its_signature_is_incomplete_signature() -> None:
    wire = presign()
    query = "&".join(p for p in wire.query.split("&") if not p.startswith("X-Amz-Signature="))
    error = refused(dataclasses.replace(wire, query=query), "IncompleteSignature")
    assert "'X-Amz-Signature'" in error.message


def test_presigned_url_valid_for_more_than_a_week_is_incomplete_signature() -> None:
    refused(presign(expires=604_801), "IncompleteSignature")


def test_header_and_query_authentication_together_are_refused() -> None:
    wire = presign()
    wire.headers["Authorization"] = json_call().headers["Authorization"]
    assert refused(wire, "IncompleteSignature").message.startswith("Only one auth mechanism allowed")


# --- property: random requests botocore signs verify, and one changed body byte never does ---------

segments = st.lists(st.text(min_size=0, max_size=12), max_size=4)
queries = st.dictionaries(st.text(max_size=10), st.text(max_size=16), max_size=5)


@settings(max_examples=150, deadline=None)
@given(body=st.binary(min_size=1, max_size=512), path=segments, params=queries,
       flip=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_botocore_signed_requests_verify_and_any_single_byte_change_of_the_body_fails(
        body: bytes, path: list[str], params: dict[str, str], flip: int, bit: int) -> None:
    raw_path = "/" + "/".join(quote(segment, safe="") for segment in path)
    wire = sign(url=ENDPOINT + raw_path, body=body, params=params,
                headers={"X-Amz-Target": "AmazonSQS.SendMessage"})
    assert verify(wire).access_key_id == KEY
    changed = bytearray(body)
    changed[flip % len(body)] ^= 1 << bit
    refused(dataclasses.replace(wire, body=bytes(changed)), "SignatureDoesNotMatch")


# --- the real SDK: boto3's SQS client, captured before it sends ------------------------------------

class CannedBody:
    """What botocore reads a response body from (``raw.stream()``)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


def captured_requests(client: Any, reply: bytes) -> list[Any]:
    sent: list[Any] = []

    def before_send(request: Any, **_: Any) -> AWSResponse:
        sent.append(request)
        return AWSResponse(request.url, 200, {"x-amzn-RequestId": "r"}, CannedBody(reply))

    client.meta.events.register("before-send.sqs", before_send)
    return sent


def test_boto3_sqs_client_requests_verify() -> None:
    client = boto3.client("sqs", endpoint_url=ENDPOINT, region_name="eu-central-1",
                          aws_access_key_id=KEY, aws_secret_access_key=SECRET)
    sent = captured_requests(client, b'{"MessageId":"m","MD5OfMessageBody":"x"}')
    with pinned_clock():
        client.send_message(QueueUrl=ENDPOINT + "/000000000000/orders", MessageBody="héllo wörld & more")
    request = sent[0]
    url = urlsplit(request.url)
    headers = wire_headers(request.headers.items(), url.netloc)
    assert headers["X-Amz-Target"] == "AmazonSQS.SendMessage"
    identity = verify_request(request.method, url.path, url.query, headers, request.body,
                              now_ms=NOW_MS, secret_for=SECRETS.get, service="sqs")
    assert identity == Identity(KEY, "eu-central-1", "sqs")
    with pytest.raises(SignatureError):
        verify_request(request.method, url.path, url.query, headers, request.body.replace(b"more", b"less"),
                       now_ms=NOW_MS, secret_for=SECRETS.get)


# --- fuzz: whatever arrives, only a SignatureError (or an Identity) comes out -----------------------

TOKENS = ["\udcff", "%", "%zz", "+", "=", "&", "/", ";", ",", " ", "..", "AWS4-HMAC-SHA256", "aws4_request",
          KEY, "20260314T150926Z", "X-Amz-Algorithm=", "X-Amz-Credential=", "X-Amz-Signature=",
          "X-Amz-Expires=", "X-Amz-Date=", "X-Amz-SignedHeaders=", "Credential=", "SignedHeaders=host",
          "Signature=",
          "Sat, 14 Mar 2026 15:09:26 -0000", "Mon, 01 Jan 0001 00:00:00 +2359", "²", "٢"]
wire_text = st.lists(st.text(max_size=8) | st.sampled_from(TOKENS), max_size=10).map("".join)
header_names = st.sampled_from(["Authorization", "X-Amz-Date", "Date", "Host", "X-Amz-Content-SHA256",
                                "X-Amz-Security-Token", "X-Other"])
REAL_AUTHORIZATION = json_call().headers["Authorization"]


@settings(max_examples=300, deadline=None)
@given(path=wire_text, query=wire_text, headers=st.lists(st.tuples(header_names, wire_text), max_size=5),
       body=st.binary(max_size=64), cut=st.none() | st.integers(0, len(REAL_AUTHORIZATION)))
def test_garbage_in_is_a_signature_error_never_another_exception(
        path: str, query: str, headers: list[tuple[str, str]], body: bytes, cut: int | None) -> None:
    sent = CIMultiDict(headers)
    if cut is not None:  # a real Authorization header, cut short and followed by garbage
        sent["Authorization"] = REAL_AUTHORIZATION[:cut] + query
    try:
        verify(Wire("POST", path, query, sent, body))
    except SignatureError as error:
        assert error.code in SignatureError.STATUS
