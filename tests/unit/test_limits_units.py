"""The pieces behind the broker's limits, without sockets: RabbitMQ's watermark forms and memory amounts,
the RSS monitor's sampling, the machine's memory (cgroup-capped), and the vhost/user limit checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from ferrymq.config import load_settings
from ferrymq.core.vhost_limits import LimitError, Limits
from ferrymq.core.watermark import Watermark, parse_amount, parse_watermark
from ferrymq.errors import NotAllowed, PreconditionFailed
from ferrymq.server.memory import MemoryMonitor, rss_bytes, total_memory_bytes


@pytest.mark.parametrize(("text", "expected"), [
    (1073741824, 1073741824), ("1GiB", 1024**3), ("1GB", 1000**3), ("512MiB", 512 * 1024**2),
    ("1024KiB", 1024 * 1024), ("2gb", 2 * 1000**3), (" 3 MB ", 3_000_000), ("1.5GiB", 1536 * 1024**2),
])
def test_memory_amounts_take_rabbitmqs_units(text: object, expected: int) -> None:
    assert parse_amount(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["lots", "1XB", "-5", "", "GiB"])
def test_a_bad_amount_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid memory amount"):
        parse_amount(bad)


def test_watermark_forms_relative_and_absolute() -> None:
    assert parse_watermark(0.4) == Watermark(relative=0.4)
    assert parse_watermark("0.6") == Watermark(relative=0.6)
    assert parse_watermark("2GiB") == Watermark(absolute=2 * 1024**3)
    assert parse_watermark(1) == parse_watermark("1") == Watermark(relative=1.0)  # not one byte
    assert parse_watermark(0) == Watermark(relative=0.0)  # RabbitMQ: 0 keeps the alarm on
    assert parse_watermark(1073741824) == parse_watermark("1073741824") == Watermark(absolute=1024**3)
    assert parse_watermark("absolute:100MB") == Watermark(absolute=100_000_000)
    assert parse_watermark({"absolute": "1GiB"}) == Watermark(absolute=1024**3)
    assert parse_watermark({"relative": 0.5}) == Watermark(relative=0.5)
    assert Watermark(relative=0.5).limit_bytes(1000) == 500
    assert Watermark(absolute=77).limit_bytes(1000) == 77
    with pytest.raises(ValueError, match="outside"):
        parse_watermark(1.5)


def test_the_watermark_setting_defaults_to_rabbitmqs_relative_0_4_and_reads_the_environment() -> None:
    assert load_settings(env={}).vm_memory_high_watermark == Watermark(relative=0.4)
    env = {"FERRYMQ_VM_MEMORY_HIGH_WATERMARK": "256MiB"}
    assert load_settings(env=env).vm_memory_high_watermark == Watermark(absolute=256 * 1024**2)
    with pytest.raises(ValueError):
        load_settings(env={"FERRYMQ_VM_MEMORY_HIGH_WATERMARK": "plenty"})


def test_monitor_reads_rss_once_per_interval_and_falls_back_to_queued_bytes() -> None:
    readings = iter([90, 100, 500])  # one at construction, then one per interval
    monitor = MemoryMonitor(Watermark(absolute=300), total_bytes=10_000, read_rss=lambda: next(readings))
    assert monitor.sample(0, queued_bytes=7) == 100 and not monitor.over()
    assert monitor.sample(10, queued_bytes=7) == 100  # within the interval: no new read
    assert monitor.sample(10, queued_bytes=7, force=True) == 500 and monitor.over()
    no_proc = MemoryMonitor(Watermark(absolute=300), total_bytes=10_000, read_rss=lambda: None)
    assert no_proc.sample(0, queued_bytes=400) == 400 and no_proc.over()


def test_rss_and_total_memory_come_from_proc_with_the_cgroup_cap(tmp_path: Path) -> None:
    rss = rss_bytes()
    assert rss is not None and rss > 1024 * 1024
    meminfo, cgroup = tmp_path / "meminfo", tmp_path / "memory.max"
    meminfo.write_text("MemTotal:       2048 kB\nMemFree: 1 kB\n")
    assert total_memory_bytes(meminfo, tmp_path / "absent") == 2048 * 1024
    cgroup.write_text("1000\n")
    assert total_memory_bytes(meminfo, cgroup) == 1000
    cgroup.write_text("max\n")
    assert total_memory_bytes(meminfo, cgroup) == 2048 * 1024
    assert rss_bytes(tmp_path / "absent") is None


def test_limits_negative_is_unlimited_zero_refuses_and_clear_removes() -> None:
    limits = Limits()
    limits.put("vhost", "v", {"max-connections": -1, "max-queues": 0})
    limits.check_vhost_connections("v", "u", 10_000)
    with pytest.raises(PreconditionFailed, match=r"queue limit in vhost 'v' \(0\) is reached"):
        limits.check_queues("v", "q", 0)
    assert limits.clear("vhost", "v", "max-queues") and not limits.clear("vhost", "v", "max-queues")
    limits.check_queues("v", "q", 5)
    limits.put("user", "u", {"max-channels": 2})
    limits.check_user_channels("u", 1)
    with pytest.raises(NotAllowed, match=r"maximum allowed user limit of \(2\)"):
        limits.check_user_channels("u", 2)
    assert limits.of("user", "u") == {"max-channels": 2}


@pytest.mark.parametrize(("scope", "values"), [
    ("vhost", {"max-channels": 1}), ("user", {"max-queues": 1}), ("vhost", {"max-queues": "x"}),
    ("vhost", {"max-queues": True}), ("user", {"max-connections": 1.5}), ("user", {"max-channels": "2"}),
])
def test_limits_refuse_unknown_names_and_non_integers(scope: str, values: dict) -> None:
    with pytest.raises(LimitError, match="Validation failed"):
        Limits().put(scope, "x", values)


def test_limit_validation_texts_are_rabbitmqs() -> None:
    with pytest.raises(LimitError) as unknown:
        Limits().put("vhost", "v", {"max-foo": 3})
    assert str(unknown.value) == 'Validation failed\n\nUnrecognised terms [{<<"max-foo">>,3}] in limits\n'
    with pytest.raises(LimitError) as not_number:
        Limits().put("vhost", "v", {"max-queues": "x"})
    assert str(not_number.value) == ('Validation failed\n\nmax-queues should be a number, '
                                     'actually was <<"x">>\n')

