"""One settings object: defaults < ferrymq.toml < FERRYMQ_* environment < CLI flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ferrymq import limits
from ferrymq.core.watermark import Watermark, parse_watermark


@dataclass(frozen=True, slots=True)
class AwsAccessKey:
    """One SigV4 access key for the SQS/SNS endpoints: requests it signs act as ``user`` in ``vhost``."""

    id: str
    secret: str = field(repr=False)  # never in a log line
    user: str
    vhost: str = "/"


@dataclass(slots=True)
class Settings:
    data_dir: str = "./ferrymq-data"  # "" runs without durability: nothing survives a restart
    host: str = "127.0.0.1"
    amqp_port: int = 5672
    kafka_port: int = 9092
    kafka_num_partitions: int = limits.KAFKA_NUM_PARTITIONS_DEFAULT  # Kafka's num.partitions
    kafka_retention_check_ms: int = limits.KAFKA_RETENTION_CHECK_MS  # log.retention.check.interval.ms
    kafka_cleaner_backoff_ms: int = limits.KAFKA_CLEANER_BACKOFF_MS  # log.cleaner.backoff.ms
    # log.cleaner.dedupe.buffer.size: the compaction offset map's memory bound (a pass maps what fits)
    kafka_cleaner_dedupe_buffer_bytes: int = limits.KAFKA_CLEANER_DEDUPE_BUFFER_BYTES
    # Kafka's advertised.listeners: where clients are told to connect after bootstrap (behind NAT, a
    # container or a proxy). "" / 0: the address the client reached us on, and the port bound.
    kafka_advertised_host: str = ""
    kafka_advertised_port: int = 0
    http_port: int = 15672
    # TLS (RabbitMQ's ssl_options, named as ours): one certificate, key and CA for every TLS listener.
    # A TLS port of 0 keeps that listener off (-1: any free port, for tests); RabbitMQ's AMQPS port
    # is 5671.
    amqps_port: int = 0
    kafka_ssl_port: int = 0  # security protocol SSL, and SASL_SSL (SASL PLAIN inside the TLS session)
    https_port: int = 0  # the HTTP plane over TLS, beside the plain http_port
    tls_cert_file: str = ""  # PEM server certificate (with its chain)
    tls_key_file: str = ""  # PEM private key of tls_cert_file
    tls_ca_file: str = ""  # PEM CA certificates that sign client certificates
    tls_verify_peer: bool = False  # ask clients for a certificate and verify it against tls_ca_file
    tls_fail_if_no_peer_cert: bool = False  # with tls_verify_peer: refuse clients without one
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
    # None configured: SQS/SNS take any credentials from loopback. Any configured: SigV4 required.
    aws_access_keys: list[AwsAccessKey] = field(default_factory=list)
    # --- limits that protect the broker (docs/limits.md) ---
    # The memory alarm by RSS: a fraction of the machine's memory (RabbitMQ's vm_memory_high_watermark,
    # relative) or an amount ("1GiB", "absolute:512MB"; its vm_memory_high_watermark.absolute).
    vm_memory_high_watermark: Watermark = field(
        default_factory=lambda: Watermark(relative=limits.MEMORY_WATERMARK_RELATIVE_DEFAULT))
    # Every admin action over the HTTP API as a JSON line; relative to data_dir; "" keeps no log.
    audit_log: str = "audit.log"
    # A client that has not opened its connection this long after connecting is dropped (RabbitMQ's
    # handshake_timeout, 10 s; AMQP; a TLS handshake has its own bound).
    handshake_timeout_ms: int = limits.HANDSHAKE_TIMEOUT_MS
    # Kafka's message.max.bytes: the largest record batch a topic without max.message.bytes accepts.
    kafka_message_max_bytes: int = limits.KAFKA_MESSAGE_MAX_BYTES
    # jobs dashboard: the ferrymq.jobs store (App(store=...)) the Jobs page reads job states, cron
    # leaders and fires from; "" shows what the broker itself holds (queues, retries, DLQs, workers).
    jobs_store: str = ""
    # definitions (issue 16): RabbitMQ's load_definitions, a definitions JSON file or a directory of
    # them, imported at every boot before the listeners open ("": none)
    load_definitions: str = ""
    # review (issue 16 follow-up): SASL required on the Kafka listeners (SASL_PLAINTEXT / SASL_SSL):
    # a connection that has not authenticated may send only ApiVersions and SaslHandshake; anything
    # else closes it, as Kafka's SaslServerAuthenticator does. False: unauthenticated clients act as guest.
    kafka_sasl_required: bool = False

    def update(self, values: dict[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for key, value in _flatten(values, known).items():
            key = key.replace("-", "_")
            if key not in known:
                raise ValueError(f"unknown setting {key!r}")
            if value is not None:
                parse = PARSERS.get(key)
                setattr(self, key, parse(value) if parse else _coerce(getattr(self, key), value))


def _flatten(values: dict[str, Any], known: dict[str, Any]) -> dict[str, Any]:
    """A TOML table that is not a setting names a group: ``[aws] access_keys`` is ``aws_access_keys``."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and key.replace("-", "_") not in known:
            flat.update({f"{key}_{sub}": v for sub, v in value.items()})
        else:
            flat[key] = value
    return flat


def parse_aws_access_keys(value: Any) -> list[AwsAccessKey]:
    """From TOML, a list of tables ``{id, secret, user, vhost = "/"}``; from FERRYMQ_AWS_ACCESS_KEYS,
    ``id:secret:user[:vhost],...``. A bad entry is one ValueError naming it."""
    entries = [e for e in value.split(",") if e.strip()] if isinstance(value, str) else value
    if not isinstance(entries, list):
        raise ValueError("aws_access_keys: expected a list of {id, secret, user, vhost} tables")
    keys = [_access_key(entry, n) for n, entry in enumerate(entries, 1)]
    ids = [k.id for k in keys]
    for key_id in ids:
        if ids.count(key_id) > 1:
            raise ValueError(f"aws_access_keys: access key id {key_id!r} is configured twice")
    return keys


def _access_key(entry: Any, n: int) -> AwsAccessKey:
    where = f"aws_access_keys entry {n}"
    if isinstance(entry, AwsAccessKey):  # given in code (EmbeddedBroker(aws_access_keys=[...]))
        return entry
    if isinstance(entry, str):
        parts = entry.strip().split(":")
        if len(parts) not in (3, 4):
            raise ValueError(f"{where}: expected id:secret:user[:vhost], got {len(parts)} field(s) "
                             "(a secret with ':' or ',' in it belongs in ferrymq.toml)")
        entry = dict(zip(AWS_KEY_FIELDS, parts, strict=False))
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a table with id, secret, user and optionally vhost")
    problems = [f"unknown field {name!r}" for name in sorted(set(entry) - set(AWS_KEY_FIELDS))]
    problems += [f"{name!r} must be a non-empty string" for name in AWS_KEY_FIELDS[:3]
                 if not isinstance(entry.get(name), str) or not entry[name]]
    if not isinstance(entry.get("vhost", "/"), str):
        problems.append("'vhost' must be a string")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))
    return AwsAccessKey(entry["id"], entry["secret"], entry["user"], entry.get("vhost") or "/")


AWS_KEY_FIELDS = ("id", "secret", "user", "vhost")
PARSERS = {"aws_access_keys": parse_aws_access_keys, "vm_memory_high_watermark": parse_watermark}


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
