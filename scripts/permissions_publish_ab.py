"""What the permission check costs a publish (issue 16): the core's publish -> deliver -> ack loop
(100 B bodies, confirms on, as ferrymq.bench.core_micro) with the channel enforcing the user's
permissions, as every AMQP client channel does, and without, in alternating rounds in one process
so both sides see the same machine load.

    python scripts/permissions_publish_ab.py [--rounds 10] [--messages 300000]
"""

from __future__ import annotations

import argparse
import statistics

from ferrymq.bench import core_micro


def rate(enforce: bool, messages: int) -> float:
    return core_micro.throughput(messages, enforce=enforce)["msgs_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--messages", type=int, default=300_000)
    args = parser.parse_args()
    rates: dict[bool, list[float]] = {True: [], False: []}
    for i in range(args.rounds):
        for enforce in (True, False) if i % 2 == 0 else (False, True):
            rates[enforce].append(rate(enforce, args.messages))
    for enforce, found in rates.items():
        side = "checked" if enforce else "off    "
        print(f"permissions {side}: median {statistics.median(found):,.0f} msg/s"
              f" (min {min(found):,.0f}, max {max(found):,.0f}, {len(found)} rounds)")


if __name__ == "__main__":
    main()
