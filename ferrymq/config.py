"""One settings object: defaults < ferrymq.toml < FERRYMQ_* environment < CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferrymq import limits


@dataclass(slots=True)
class Settings:
    data_dir: str = "./ferrymq-data"  # "" runs without durability: nothing survives a restart
    host: str = "127.0.0.1"
    amqp_port: int = 5672
    kafka_port: int = 9092
    kafka_num_partitions: int = limits.KAFKA_NUM_PARTITIONS_DEFAULT  # Kafka's num.partitions
    http_port: int = 15672
    fsync: str = "always"  # always | interval:<ms> | never
    log_level: str = "info"
    frame_max: int = limits.FRAME_MAX_BYTES
    channel_max: int = limits.CHANNEL_MAX
    heartbeat_s: int = limits.HEARTBEAT_S
    message_max_bytes: int = limits.MESSAGE_MAX_BYTES
    consumer_timeout_ms: int = limits.CONSUMER_TIMEOUT_DEFAULT_MS
    memory_high_watermark_bytes: int = limits.MEMORY_HIGH_WATERMARK_BYTES
    disk_free_limit_bytes: int = limits.DISK_FREE_LIMIT_BYTES
    # kombu gives Celery RabbitMQ's per-channel prefetch only when product == "RabbitMQ".
    amqp_product: str = "RabbitMQ"
    amqp_version: str = "3.12.0"
    users: dict[str, str] = field(default_factory=lambda: {"guest": "guest"})
    loopback_users: list[str] = field(default_factory=lambda: ["guest"])

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in values.items():
            key = key.replace("-", "_")
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            if value is not None:
                setattr(self, key, _coerce(getattr(self, key), value))


def _coerce(current: Any, value: Any) -> Any:
    if isinstance(current, bool):
        return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
    if isinstance(current, int) and not isinstance(value, int):
        return int(value)
    if isinstance(current, dict) and isinstance(value, str):
        return dict(pair.split(":", 1) for pair in value.split(",") if pair)
    if isinstance(current, list) and isinstance(value, str):
        return [v for v in value.split(",") if v]
    return value


def load_settings(
    config_file: str | Path | None = None,
    env: dict[str, str] | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    settings = Settings()
    path = Path(config_file) if config_file else Path("ferrymq.toml")
    if path.exists():
        with path.open("rb") as f:
            settings.update(tomllib.load(f))
    elif config_file:
        raise FileNotFoundError(f"config file {path} not found")
    environ = os.environ if env is None else env
    settings.update(
        {k[len("FERRYMQ_"):].lower(): v for k, v in environ.items() if k.startswith("FERRYMQ_")}
    )
    settings.update(overrides or {})
    return settings
