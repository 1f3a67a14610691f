"""Settings: frozen, secrets masked, unknown names refused, the embedded DSN's default."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from streams.settings import Settings


def test_settings_are_frozen_and_mask_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FUNNEL_KAFKA_SASL_PASSWORD", "hunter2")
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_PASSWORD", "s3cret")
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_DSN", "https://app:inline-pw@ch.example:8443/funnel")
    monkeypatch.setenv("FUNNEL_KAFKA_BOOTSTRAP", "kafka://broker:9092")
    settings = Settings()
    shown = orjson.dumps(settings.masked()).decode()
    for secret in ("hunter2", "s3cret", "inline-pw"):
        assert secret not in shown
    assert settings.kafka_bootstrap == "broker:9092"
    assert settings.masked()["clickhouse_dsn"] == "https://app:**********@ch.example:8443/funnel"
    in_query = settings.model_copy(
        update={"clickhouse_dsn": "https://ch.example/funnel?user=app&password=q-pw&secure=1"}
    )
    assert in_query.masked()["clickhouse_dsn"] == (
        "https://ch.example/funnel?user=app&password=**********&secure=1"
    )
    with pytest.raises(ValidationError):
        settings.events_topic = "other"  # type: ignore[misc]


def test_unknown_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(no_such_setting=1)  # type: ignore[call-arg]


def test_embedded_dsn_defaults_under_the_data_dir(tmp_path: object) -> None:
    settings = Settings(data_dir="/srv/funnel")  # type: ignore[arg-type]
    assert settings.resolved_clickhouse_dsn == "chdb:////srv/funnel/chdb"
