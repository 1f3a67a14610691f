"""The one frozen settings object, built once at the edge (the CLI); nothing else reads env."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FUNNEL_", frozen=True, extra="forbid")

    # Kafka
    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, host:port[,…]"
    )
    kafka_security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="Kafka security protocol"
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        "PLAIN", description="SASL mechanism when SASL is on"
    )
    kafka_sasl_username: str = Field("", description="SASL user name")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password (secret)")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle to verify the brokers")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mutual TLS)")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client private key (mutual TLS)")
    events_topic: str = Field("funnel.events", description="Storefront events in")
    dlq_topic: str = Field("funnel.events.dlq", description="Rejected messages with the reason")
    abandoned_topic: str = Field("funnel.carts.abandoned", description="Abandoned carts out")
    repartition_topic: str = Field(
        "", description="Internal topic for events read outside their session's partition"
    )
    spend_topic: str = Field("funnel.ad_spend", description="Ad spend rows in (JSON)")
    topic_partitions: int = Field(8, ge=1, description="Partitions when we create topics")
    app_id: str = Field("funnelstream", description="Consumer group and state namespace")
    kafka_flavor: Literal["kafka", "tansu"] = Field(
        "kafka", description="tansu: apply the embedded broker's client workarounds"
    )

    # ClickHouse
    data_dir: Path = Field(Path("data"), description="Local state: embedded chDB, worker tables")
    clickhouse_dsn: str = Field(
        "",
        description="chdb:///path (embedded) or http(s)://host:8123/db; empty = chDB in data_dir",
    )
    clickhouse_database: str = Field("funnel", description="Database for every funnel table")
    clickhouse_user: str = Field("default", description="ClickHouse user (server only)")
    clickhouse_password: SecretStr = Field(
        SecretStr(""), description="ClickHouse password (secret)"
    )
    raw_ttl_days: int = Field(90, ge=1, description="TTL of raw events and dead letters")
    aggregate_ttl_days: int = Field(730, ge=1, description="TTL of stage entries, orders, carts")

    # Ingestion
    max_payload_bytes: int = Field(1_048_576, ge=1, description="Larger messages are dead-lettered")
    max_future_s: int = Field(86_400, ge=0, description="occurred_at may be this far ahead of now")
    max_event_age_s: int = Field(30 * 86_400, ge=1, description="occurred_at may be this old")
    batch_max: int = Field(20_000, ge=1, description="Most events per fetch and processing batch")
    batch_within_s: float = Field(
        0.25, gt=0, description="Longest wait to fill a batch (agents on Faust's stream path)"
    )

    # Funnel rules
    conversion_window_s: int = Field(
        86_400, ge=1, description="Stage-1 time + this bounds the funnel"
    )
    lateness_s: int = Field(
        300, ge=0, description="Allowed event-time lateness behind the watermark"
    )
    abandonment_timeout_s: int = Field(1_800, ge=1, description="Cart inactivity that abandons it")
    idle_after_s: float = Field(
        30.0, gt=0, description="Idle partitions advance their watermark with the wall clock after"
    )
    tick_interval_s: float = Field(
        0.25, gt=0, description="How often caught-up partitions are checked for idleness"
    )
    max_clock_skew_s: int = Field(
        60, ge=0, description="Event clock may run this far ahead of the worker's before flagged"
    )
    session_max_events: int = Field(5_000, ge=1, description="Events one session may hold")
    session_max_item_lines: int = Field(
        1_000, ge=1, description="Item lines over one session's events"
    )
    session_max_pending: int = Field(
        2_000, ge=1, description="Events one session may hold waiting for the watermark"
    )
    session_max_state_bytes: int = Field(
        524_288, ge=1, le=900_000, description="Estimated encoded state of one session, bytes"
    )
    sites: str = Field(
        "", description="Comma-separated site ids that get metric labels (empty: by volume)"
    )
    site_label_limit: int = Field(50, ge=1, description="Sites with own metric labels; rest: other")
    site_label_min_sessions: int = Field(
        100, ge=1, description="Sessions before a site gets its own label (no FUNNEL_SITES)"
    )

    # Operations
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus /metrics (0 = off)")
    # Loopback by default: /metrics shows per-site revenue. A container that Prometheus scrapes
    # from outside sets 0.0.0.0 (deploy/Dockerfile does), deliberately.
    metrics_host: str = Field("127.0.0.1", description="Address /metrics listens on")
    query_port: int = Field(
        9109, ge=0, le=65535, description="Report endpoint and web dashboard port (0 = off)"
    )
    query_host: str = Field(
        "127.0.0.1", description="Address the report endpoint and dashboard listen on"
    )
    dashboard_token: SecretStr = Field(
        SecretStr(""), description="Required by the endpoint when set; needed off loopback"
    )
    report_max_concurrent: int = Field(
        2, ge=1, le=16, description="Report queries the worker's endpoint runs at once"
    )
    log_level: str = Field("INFO", description="Worker log level")
    commit_interval_s: float = Field(2.0, gt=0, description="Offset commit period")

    @field_validator("kafka_bootstrap")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        return value.removeprefix("kafka://")

    @model_validator(mode="after")
    def _token_off_loopback(self) -> Self:
        # The dashboard shows revenue: it is never open to the network by accident.
        if not is_loopback(self.query_host) and not self.dashboard_token.get_secret_value():
            raise ValueError(
                f"FUNNEL_QUERY_HOST={self.query_host} is not loopback: set "
                "FUNNEL_DASHBOARD_TOKEN too, or keep the default 127.0.0.1"
            )
        return self

    @property
    def repartition_topic_name(self) -> str:
        """Empty means named after the app id: it belongs to the consumer group, like the
        table's changelog (a new group must not read an old group's forwards and markers)."""
        return self.repartition_topic or f"{self.app_id}-repartition"

    @property
    def resolved_clickhouse_dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb:///{(self.data_dir / 'chdb').resolve()}"

    def masked(self) -> dict[str, Any]:
        """Settings for printing: secrets and passwords inside URLs are masked."""
        shown = self.model_dump(mode="json")
        for name, value in shown.items():
            if isinstance(getattr(self, name), SecretStr) and value:
                shown[name] = "**********"
        shown["clickhouse_dsn"] = mask_url(self.clickhouse_dsn)
        return shown


MASK = "**********"
# Query parameters that carry a secret in a DSN (clickhouse-connect passes them to the client).
_SECRET_PARAMS = frozenset({"password", "pass", "pwd", "access_token", "token", "secret", "key"})


def mask_url(url: str) -> str:
    """The URL with the password of its user part and secret query parameters masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@", 1)
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(name.lower() in _SECRET_PARAMS for name, _ in pairs):
        query = urlencode(
            [(n, MASK if n.lower() in _SECRET_PARAMS else v) for n, v in pairs], safe="*"
        )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve anywhere
