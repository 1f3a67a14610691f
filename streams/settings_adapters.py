"""What each part needs, cut from the one `Settings`: ClickHouse, decode limits, funnel rules.

Beside `Settings` so the worker, the report and the tools build these one way.
"""

from __future__ import annotations

from schemas.decode import DecodeLimits
from sinks.clickhouse import ClickHouseConfig
from streams.funnel.rules import FunnelRules, SessionLimits
from streams.settings import Settings


def clickhouse_config(settings: Settings) -> ClickHouseConfig:
    return ClickHouseConfig(
        dsn=settings.resolved_clickhouse_dsn,
        database=settings.clickhouse_database,
        user=settings.clickhouse_user,
        password=settings.clickhouse_password.get_secret_value(),
        raw_ttl_days=settings.raw_ttl_days,
        aggregate_ttl_days=settings.aggregate_ttl_days,
    )


def decode_limits(settings: Settings) -> DecodeLimits:
    return DecodeLimits(
        max_payload_bytes=settings.max_payload_bytes,
        max_future_ms=settings.max_future_s * 1000,
        max_age_ms=settings.max_event_age_s * 1000,
    )


def funnel_rules(settings: Settings) -> FunnelRules:
    return FunnelRules(
        conversion_window_ms=settings.conversion_window_s * 1000,
        lateness_ms=settings.lateness_s * 1000,
        abandonment_ms=settings.abandonment_timeout_s * 1000,
        idle_after_ms=round(settings.idle_after_s * 1000),
        max_skew_ms=settings.max_clock_skew_s * 1000,
    )


def session_limits(settings: Settings) -> SessionLimits:
    return SessionLimits(
        max_events=settings.session_max_events,
        max_item_lines=settings.session_max_item_lines,
        max_pending=settings.session_max_pending,
        max_state_bytes=settings.session_max_state_bytes,
    )
