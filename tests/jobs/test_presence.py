"""A worker's presence table: what it announces fits RabbitMQ's pre-tune frame, and reads back
after the AMQP table codec (the bytes a broker receives)."""

from __future__ import annotations

from ferrymq.jobs import App
from ferrymq.jobs.presence import ANNOUNCE_BYTES_MAX, KEY, announcement, parse
from ferrymq.protocols.amqp.tables import decode_table, encode_table


def _app(schedules: int) -> App:
    app = App("amqp://guest:guest@127.0.0.1:1/%2F", store="sqlite://")
    for n in range(schedules):
        app.schedule(f"report_{n:03d}", cron="0 9 * * *", tz="Europe/Paris")(lambda: None)
    return app


def test_presence_reads_back_through_the_amqp_table_codec() -> None:
    table = announcement(_app(1), "host:1:ab", ["default", "billing"], 8, True)
    raw = encode_table({KEY: table, "product": "ferrymq.jobs worker"})
    presence = parse(decode_table(raw, 4, len(raw)))
    assert presence is not None
    assert (presence.worker_id, presence.queues, presence.concurrency, presence.scheduler) == (
        "host:1:ab", ("default", "billing"), 8, True)
    (schedule,) = presence.schedules
    assert (schedule.name, schedule.cron, schedule.tz, schedule.job, schedule.missed) == (
        "report_000", "0 9 * * *", "Europe/Paris", "report_000", "skip")


def test_many_schedules_are_cut_to_the_size_cap_and_counted() -> None:
    table = announcement(_app(200), "w", ["default"], 8, False)
    assert len(encode_table({KEY: table})) <= ANNOUNCE_BYTES_MAX + 512 < 4096
    presence = parse({KEY: table})
    assert presence is not None and presence.schedules_total == 200 and 0 < len(presence.schedules) < 200


def test_other_clients_and_foreign_tables_have_no_presence() -> None:
    assert parse({"product": "pika"}) is None
    assert parse({KEY: {"v": 1, "worker_id": "w"}}) is None
