# Appended to a throw-away copy of aiokafka's tests/conftest.py by scripts/kafka-upstream-suites.sh:
# the docker-started Kafka is replaced by the FerryMQ broker the script started (KAFKA_HOST/PORT, and
# KAFKA_SSL_PORT: its TLS listener, whose certificates the script put in tests/ssl_cert).
# Fixtures that exec into the Kafka container (ACLs, SCRAM users, Kerberos) skip their tests.
import os as _os
import pathlib as _pathlib

import pytest as _pytest


class _NoContainer:
    def __getattr__(self, name):
        _pytest.skip("needs aiokafka's Kafka docker container (ACLs, SCRAM, Kerberos)")


@_pytest.fixture(scope="session")
def docker(request):
    yield None


@_pytest.fixture(scope="session")
def kafka_image(request, docker):
    return request.config.getoption("--docker-image")


@_pytest.fixture(scope="session")
def ssl_folder(docker, kafka_image):
    return _pathlib.Path("tests/ssl_cert")


@_pytest.fixture(scope="session")
def kafka_server(kafka_image, docker, docker_ip_address, unused_port, session_id, ssl_folder):
    host, port = _os.environ["KAFKA_HOST"], int(_os.environ["KAFKA_PORT"])
    ssl_port = int(_os.environ["KAFKA_SSL_PORT"])
    yield KafkaServer(host, port, ssl_port, port, port, None)  # noqa: F821 - defined in the conftest above


@_pytest.fixture(scope="class")
def acl_manager(kafka_server, request):
    return _NoContainer()


@_pytest.fixture(scope="class")
def kafka_config(kafka_server, request):
    return _NoContainer()


@_pytest.fixture(scope="class")
def kerberos_utils(kafka_server):
    return _NoContainer()
