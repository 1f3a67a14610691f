"""Sink pieces without a database: backoff bounds and the retriable decision."""

from __future__ import annotations

import random

import pytest
from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    OperationalError,
    ProgrammingError,
)

from sinks.clickhouse import ClickHouseConfig, client_options
from sinks.errors import SinkError, translate
from sinks.retry import Backoff


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    backoff = Backoff(initial_s=0.1, cap_s=2.0, multiplier=2.0)
    rng = random.Random(3)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    for attempt, ceiling in enumerate(ceilings):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0
        assert max(delays) <= ceiling
        # Full jitter spreads retries over the whole interval, not at its end.
        assert max(delays) > 0.8 * ceiling
        assert min(delays) < 0.2 * ceiling


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (OperationalError("Connection refused"), True),
        (DatabaseError("Code: 242. TABLE_IS_READ_ONLY", code=242), True),
        (DatabaseError("Code: 252. TOO_MANY_PARTS", code=252), True),
        (DatabaseError("HTTP 503"), True),
        (DatabaseError("Code: 60. UNKNOWN_TABLE", code=60), False),
        (ProgrammingError("Syntax error"), False),
        (DataError("Cannot parse"), False),
        (ValueError("bad row"), False),
        (DatabaseError("Code: 243. Cannot reserve 1.00 MiB, not enough space", code=243), False),
        (DatabaseError("Code: 75. Cannot write to file: No space left on device", code=75), False),
    ],
)
def test_translate_decides_retriable_once(error: Exception, retriable: bool) -> None:
    translated = translate(error)
    assert isinstance(translated, SinkError)
    assert translated.retriable is retriable
    assert str(error) in str(translated)
    assert ("disk full" in str(translated)) is ("space" in str(error))


@pytest.mark.parametrize(
    ("dsn", "user", "password", "expected"),
    [
        ("https://funnel:pw@ch:8443/db", "default", "", ("https://ch:8443/db", "funnel", "pw")),
        ("https://funnel:p%40ss@ch/db", "default", "", ("https://ch/db", "funnel", "p@ss")),
        ("https://ch/db?user=funnel&password=pw&secure=1", "default", "",
         ("https://ch/db?secure=1", "funnel", "pw")),
        ("https://ch:8443/db", "reader", "s3", ("https://ch:8443/db", "reader", "s3")),
        ("https://funnel:old@[::1]:8443/db", "default", "new",
         ("https://[::1]:8443/db", "funnel", "new")),
    ],
)  # fmt: skip
def test_the_dsn_user_is_honoured(
    dsn: str, user: str, password: str, expected: tuple[str, str, str]
) -> None:
    options = client_options(ClickHouseConfig(dsn=dsn, user=user, password=password))
    assert (options["dsn"], options["username"], options["password"]) == expected


def test_embedded_dsn_takes_no_credentials() -> None:
    assert client_options(ClickHouseConfig(dsn="chdb:///x")) == {"dsn": "chdb:///x"}
