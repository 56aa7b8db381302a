"""The private RabbitMQ launcher for tests: it lives in ``ferrymq.bench.rabbitmq_node`` (one
launcher for benchmarks and tests); this module keeps the tests' import path.

    python -m tests.support.rabbitmq [DIR]   # same as python -m ferrymq.bench.rabbitmq_node
"""

from ferrymq.bench.rabbitmq_node import (
    RabbitNode,
    answers_amqp,
    available,
    free_port,
    main,
    remove,
    server_script,
    start_rabbitmq,
)

__all__ = ["RabbitNode", "answers_amqp", "available", "free_port", "main", "remove", "server_script",
           "start_rabbitmq"]

if __name__ == "__main__":
    main()
