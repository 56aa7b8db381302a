"""Stands in for Kafka's ``bin/kafka-topics.sh --create`` in librdkafka's tests (0052, 0077 call it
through test_kafka_topics to make a topic with configs): the same topic made with CreateTopics over
FerryMQ's Kafka listener, by kafka-python's admin client. Only what those tests pass is understood.

    kafka_topics.py (--zookeeper|--bootstrap-server) HOST:PORT --create --topic T --partitions N
                    --replication-factor R [--config key=value]...
"""

from __future__ import annotations

import argparse
import sys

from kafka.admin import KafkaAdminClient, NewTopic


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="kafka-topics.sh")
    p.add_argument("--zookeeper", "--bootstrap-server", dest="bootstrap", required=True)
    p.add_argument("--create", action="store_true", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--replication-factor", type=int, default=1)
    p.add_argument("--config", action="append", default=[])
    args = p.parse_args(argv)
    configs = dict(item.split("=", 1) for item in args.config)
    admin = KafkaAdminClient(bootstrap_servers=args.bootstrap)
    try:
        admin.create_topics([NewTopic(args.topic.strip('"'), args.partitions, args.replication_factor,
                                      topic_configs=configs)])
    finally:
        admin.close()
    print(f'Created topic "{args.topic}".')
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
