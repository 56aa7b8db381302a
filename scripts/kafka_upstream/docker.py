"""Stands in for the docker SDK that aiokafka's conftest imports; no container is ever started."""


class DockerException(Exception):
    pass


def from_env():
    raise DockerException("no docker here: the suite runs against a FerryMQ broker")


class models:
    class containers:
        Container = object
