"""Spend rows: every bad-row kind names its line and reason; good rows are normalised."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest

from schemas.spend import SpendRow, decode_spend, normalise_channel
from sinks.spend import read_spend_csv

HEADER = "date,site_id,utm_source,utm_campaign,cost,currency,clicks,impressions\n"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("2026-03-01,shop,google,bf,10,XXX,1,2", "unknown currency 'XXX'"),
        ("2026-03-01,shop,google,bf,-0.01,EUR,1,2", "negative cost -0.01"),
        ("2026-13-01,shop,google,bf,10,EUR,1,2", "bad date '2026-13-01'"),
        ("01/03/2026,shop,google,bf,10,EUR,1,2", "bad date '01/03/2026'"),
        ("2026-03-01,shop,  ,bf,10,EUR,1,2", "missing utm_source"),
        ("2026-03-01,,google,bf,10,EUR,1,2", "missing site_id"),
        ("2026-03-01,shop,google,bf,ten,EUR,1,2", "cost 'ten' is not a number"),
        ("2026-03-01,shop,google,bf,10,EUR,-1,2", "clicks '-1' is not a whole number"),
        ("2026-03-01,shop,google,bf,10.1234567,EUR,1,2", "more than 6 decimals"),
        ("2026-03-01,shop,google,bf,10,EUR,1", "expected 8 fields"),
    ],
)
def test_each_bad_row_kind_gives_its_line_and_reason(line: str, reason: str) -> None:
    good = "2026-03-01,shop,google,,1,EUR,,\n"
    spend = read_spend_csv(io.StringIO(HEADER + good + line + "\n" + good), ingested_at_ms=5)
    assert len(spend.errors) == 1
    assert spend.errors[0].line == 3
    assert reason in spend.errors[0].reason
    assert len(spend.rows) == 1  # the two good lines are one identity: the later one


def test_missing_and_unknown_columns_are_line_one() -> None:
    spend = read_spend_csv(io.StringIO("date,utm_source,cost,colour\n"), ingested_at_ms=0)
    assert [(e.line, e.reason) for e in spend.errors] == [
        (1, "missing column(s) site_id, currency; unknown column(s) colour")
    ]
    # --site stands in for the site_id column.
    with_site = read_spend_csv(
        io.StringIO("date,utm_source,cost,currency\n2026-03-01,google,1,eur\n"),
        ingested_at_ms=0,
        default_site="shop",
    )
    assert with_site.errors == ()
    assert with_site.rows[0].site_id == "shop"
    assert with_site.rows[0].currency == "EUR"


def test_sources_are_normalised_as_events_are() -> None:
    assert normalise_channel("  Google\t") == "google"
    row = decode_spend(
        {"date": "2026-03-01", "site_id": "s", "utm_source": " FaceBook ", "cost": "12.50",
         "currency": "usd", "utm_campaign": " Spring ", "updated_at": "2026-03-02T00:00:00Z"},
        ingested_at_ms=7,
    )  # fmt: skip
    assert row == SpendRow(
        "s", date(2026, 3, 1), "facebook", "spring", "USD", Decimal("12.50"), 0, 0,
        1_772_409_600_000,
    )  # fmt: skip
