"""What a multi-partition topic's AMQP face (its super stream) costs CreateTopics: the median time of
confluent-kafka's AdminClient creating topics of N partitions on an EmbeddedBroker with a data directory.
Run it on two checkouts (with and without super streams) in the same sitting to compare.

    PYTHONPATH=. .venv/bin/python scripts/super_stream_create_cost.py --partitions 100 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from confluent_kafka.admin import AdminClient, NewTopic

from ferrymq.testing import EmbeddedBroker


def create_ms(admin: AdminClient, name: str, partitions: int) -> float:
    started = time.perf_counter()
    for future in admin.create_topics([NewTopic(name, partitions)]).values():
        future.result(60)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, EmbeddedBroker(data_dir=data) as broker:
        admin = AdminClient({"bootstrap.servers": broker.kafka_bootstrap})
        create_ms(admin, "warm-up", 1)
        one = [create_ms(admin, f"one-{i}", 1) for i in range(args.runs)]
        many = [create_ms(admin, f"many-{i}", args.partitions) for i in range(args.runs)]
    print(f"CreateTopics median of {args.runs}: 1 partition {statistics.median(one):.1f} ms, "
          f"{args.partitions} partitions {statistics.median(many):.1f} ms")


if __name__ == "__main__":
    main()
