"""The generator's HTTP/1.1 response parser: fed one byte at a time or many responses at once."""

from __future__ import annotations

import pytest

from ferrymq.bench.sqs.http11 import HttpError, ResponseParser, request, request_head

LENGTH = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
CHUNKED = (b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"4\r\n{\"b\"\r\n3;x=y\r\n:2}\r\n0\r\n\r\n")


def test_responses_fed_byte_by_byte_come_out_whole_and_in_order() -> None:
    p, out = ResponseParser(), []
    for i in range(len(LENGTH + CHUNKED)):
        out += p.feed((LENGTH + CHUNKED)[i:i + 1])
    assert [(r.status, r.body, r.close) for r in out] == [(200, b'{"a":1}', False), (400, b'{"b":2}', True)]


def test_several_responses_in_one_read_and_http10_closes() -> None:
    out = ResponseParser().feed(LENGTH * 3 + b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert [r.status for r in out] == [200] * 4 and [r.close for r in out] == [False] * 3 + [True]


def test_a_garbled_status_line_is_an_http_error() -> None:
    with pytest.raises(HttpError):
        ResponseParser().feed(b"SMTP ready\r\n\r\n")


def test_request_bytes_carry_the_body_length() -> None:
    head = request_head("h:1", "/", {"X-Amz-Target": "AmazonSQS.ReceiveMessage"})
    assert request(head, b"{}") == (b"POST / HTTP/1.1\r\nHost: h:1\r\n"
                                    b"X-Amz-Target: AmazonSQS.ReceiveMessage\r\nContent-Length: 2\r\n\r\n{}")
