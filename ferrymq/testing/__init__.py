"""Helpers shipped for users' own test suites."""

from ferrymq.testing.embedded import EmbeddedBroker

__all__ = ["EmbeddedBroker"]
