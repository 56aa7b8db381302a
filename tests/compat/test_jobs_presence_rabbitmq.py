"""RabbitMQ takes a worker's presence table at its largest: connection.start-ok is read before
frame sizes are negotiated, so the capped table must fit RabbitMQ's pre-tune limit, and the
management API then shows it in the connection's client properties."""

from __future__ import annotations

from ferrymq.client.connection import Client
from ferrymq.jobs import App
from ferrymq.jobs.presence import KEY, announcement


def test_rabbitmq_accepts_the_largest_presence_table(rabbitmq_url: str) -> None:
    app = App(rabbitmq_url, store="sqlite://")
    for n in range(200):
        app.schedule(f"a_rather_long_schedule_name_{n:03d}", cron="*/5 9-17 * * 1-5", tz="America/New_York")(
            lambda: None)
    table = announcement(app, "worker-host.example.internal:123456:abcd", ["default", "billing"], 50, True)
    assert 0 < len(table["schedules"]) < 200
    client = Client(rabbitmq_url, product="ferrymq.jobs worker", properties={KEY: table}).open(heartbeat=30)
    try:
        assert client.declare_queue("presence-probe", durable=False).message_count == 0
    finally:
        client.close()
