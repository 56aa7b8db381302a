"""Prints the Kafka version kafka-python infers from a broker's ApiVersions, e.g. ``2.4``.

Run with the suite's own kafka-python. The suites' KAFKA_VERSION (kafka-python) and
TEST_KAFKA_VERSION (librdkafka) say which broker the tests are talking to: they gate the tests a
broker of that version supports, and test_kafka_version_infer checks the client infers it. Reading it
from the running broker keeps it what FerryMQ's advertised ranges say, as they change.

    python kafka_version.py HOST:PORT
"""

from __future__ import annotations

import sys

from kafka import KafkaConsumer

if __name__ == "__main__":
    consumer = KafkaConsumer(bootstrap_servers=sys.argv[1], api_version=None)
    try:
        print(".".join(str(part) for part in consumer.config["api_version"]))
    finally:
        consumer.close()
