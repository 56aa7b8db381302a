"""How soon a long-polling ReceiveMessage returns once a message is sent (issue 14's "long-poll
wake-up time"): a raw-socket poller waits with WaitTimeSeconds=20 on an empty queue, another
connection sends one message, and the poll's return is timed against the send's start.

    python scripts/sqs_long_poll_wake.py [--samples 200]      # starts its own `ferrymq serve`
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from ferrymq.chaos.broker import free_port


def call(conn: http.client.HTTPConnection, action: str, body: dict[str, object]) -> dict[str, object]:
    conn.request("POST", "/", json.dumps(body), {"X-Amz-Target": f"AmazonSQS.{action}",
                                                  "Content-Type": "application/x-amz-json-1.0"})
    reply = conn.getresponse()
    data = json.loads(reply.read() or b"{}")
    if reply.status != 200:
        raise RuntimeError(f"{action}: {reply.status} {data}")
    return data


def sample(port: int, url: str) -> float:
    poller = http.client.HTTPConnection("127.0.0.1", port)
    sender = http.client.HTTPConnection("127.0.0.1", port)
    done: dict[str, float] = {}

    def poll() -> None:
        got = call(poller, "ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 20})
        done["at"] = time.perf_counter()
        for msg in got.get("Messages", []):
            call(poller, "DeleteMessage", {"QueueUrl": url, "ReceiptHandle": msg["ReceiptHandle"]})
    thread = threading.Thread(target=poll)
    thread.start()
    time.sleep(0.05)  # the poll is parked before the send
    sent = time.perf_counter()
    call(sender, "SendMessage", {"QueueUrl": url, "MessageBody": "wake"})
    thread.join(25)
    poller.close()
    sender.close()
    return (done["at"] - sent) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen([sys.executable, "-m", "ferrymq.cli", "serve", "--data-dir", data,
                                 "--amqp-port", "0", "--kafka-port", "0", "--http-port", str(port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(2)
            conn = http.client.HTTPConnection("127.0.0.1", port)
            url = call(conn, "CreateQueue", {"QueueName": "wake"})["QueueUrl"]
            waits = [sample(port, url) for _ in range(args.samples)]
            waits.sort()
            print(f"{len(waits)} wake-ups (send start -> poll return): "
                  f"p50 {statistics.median(waits):.2f} ms, "
                  f"p99 {waits[int(len(waits) * 0.99) - 1]:.2f} ms, max {waits[-1]:.2f} ms")
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
