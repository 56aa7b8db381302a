"""HTTPS for the HTTP plane: requests with verification on, and a wrong CA refused and logged."""

from __future__ import annotations

import logging

import pytest
import requests

from tests.support.tls import (
    module_fixtures,
    wait_for_handshake_failure,
)

pytestmark = pytest.mark.timeout(60)

dev, broker = module_fixtures()


def test_requests_reads_the_management_api_over_https_with_verification_on(broker, dev):
    reply = requests.get(f"https://localhost:{broker.https_port}/api/overview", auth=("guest", "guest"),
                         verify=str(dev.ca), timeout=10)
    assert reply.status_code == 200 and reply.json()["product_name"]
    plain = requests.get(f"{broker.http_url}/api/overview", auth=("guest", "guest"), timeout=10)
    assert plain.status_code == 200  # the plain listener stays beside it


def test_https_asks_for_credentials_as_the_plain_listener_does(broker, dev):
    reply = requests.get(f"https://127.0.0.1:{broker.https_port}/api/queues", verify=str(dev.ca), timeout=10)
    assert reply.status_code == 401


def test_requests_trusting_another_ca_fails_verification_and_the_broker_logs_it(broker, dev, caplog):
    caplog.set_level(logging.WARNING, logger="ferrymq.tls")
    with pytest.raises(requests.exceptions.SSLError) as failure:
        requests.get(f"https://localhost:{broker.https_port}/api/overview", verify=str(dev.other_ca),
                     timeout=10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(failure.value)
    lines = wait_for_handshake_failure(caplog, "HTTPS")
    assert lines and "unknown ca" in lines[0]
