"""The report's pure parts: arguments, money, derived numbers and both renderings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from sinks.report_queries import (
    EMPTY,
    FunnelCounts,
    ReportCounts,
    ReportQuery,
    Sales,
    Segment,
    ceil_ms,
)
from streams.cli import main
from streams.funnel.facts import Stage
from streams.report.numbers import (
    ReportRequest,
    average,
    build_report,
    money,
    parse_instant,
    summarise,
)
from streams.report.view import report_json, report_table

START = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
END = START + timedelta(hours=1, seconds=17)
QUERY = ReportQuery("shop-1", START, END)


def counts(
    *sessions: int, sales: tuple[Sales, ...] = (), carts: tuple[int, int, int] = (0, 0, 0)
) -> FunnelCounts:
    return FunnelCounts(sessions, sales, *carts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T09:30:00Z", START),
        ("2026-03-01T11:30:00+02:00", START),
        ("2026-03-01T04:00:00.250-05:30", START + timedelta(milliseconds=250)),
    ],
)
def test_instants_need_an_offset_and_come_out_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("2026-03-01T09:30:00", "no UTC offset"),
        ("2026-03-01", "no UTC offset"),
        ("yesterday", "not an ISO 8601"),
        ("0001-01-01T00:00:00+14:00", "out of range"),
        ("9999-12-31T23:59:59-14:00", "out of range"),
    ],
)
def test_instants_without_offset_or_not_iso_are_refused(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_instant(text)


def test_a_query_needs_a_site_from_before_to_aware_times_and_a_known_dimension() -> None:
    with pytest.raises(ValueError, match="before"):
        ReportQuery("s", END, START)
    with pytest.raises(ValueError, match="before"):
        ReportQuery("s", START, START)
    with pytest.raises(ValueError, match="offset"):
        ReportQuery("s", START.replace(tzinfo=None), END)
    with pytest.raises(ValueError, match="site"):
        ReportQuery("", START, END)
    with pytest.raises(ValueError, match="break down"):
        ReportQuery("s", START, END, by="user_id")
    assert ReportQuery("s", START, END, by="device").by == "device"


@pytest.mark.parametrize(
    "params",
    [
        {"site": "s", "from": "0001-01-01T00:00:00+14:00", "to": "2026-03-01T11:00:00Z"},
        {"site": "s", "from": "2026-03-01T10:00:00Z", "to": "2026-03-01T11:00:00Z",
         "min_sessions": "many"},
        {"site": "s", "from": "2026-03-01T10:00:00Z", "to": "2026-03-01T11:00:00Z", "by": "x"},
    ],
)  # fmt: skip
def test_bad_endpoint_parameters_are_value_errors_the_endpoint_answers_400(
    params: dict[str, str],
) -> None:
    # report_endpoint turns ValueError into HTTP 400
    with pytest.raises(ValueError, match=r"out of range|whole number|cannot break down"):
        ReportRequest.from_params(params)


def test_request_parameters_round_trip_and_name_what_is_missing() -> None:
    other_zone = START.astimezone(timezone(timedelta(hours=-3)))
    request = ReportRequest(ReportQuery("shop-1", other_zone, END, "variant"), 5, as_json=True)
    assert ReportRequest.from_params(request.as_params()) == request
    with pytest.raises(ValueError, match="missing parameter\\(s\\): site, to"):
        ReportRequest.from_params({"from": "2026-03-01T09:30:00Z"})
    with pytest.raises(ValueError, match="format"):
        ReportRequest.from_params(request.as_params() | {"format": "xml"})
    with pytest.raises(ValueError, match="min_sessions"):
        ReportRequest(QUERY, min_sessions=-1)


@pytest.mark.parametrize(
    ("amount", "shown"),
    [
        ("0.005", "0.00"),  # halves go to the even cent
        ("0.015", "0.02"),
        ("2.675", "2.68"),
        ("-1.005", "-1.00"),
        ("7", "7.00"),
        ("12345678901234567890123456789012.345678", "12345678901234567890123456789012.35"),
    ],
)
def test_money_is_exact_to_the_cent_with_bankers_rounding(amount: str, shown: str) -> None:
    assert money(Decimal(amount)) == shown


def test_average_order_value_divides_the_exact_revenue() -> None:
    # 10.00 + 10.00 + 10.01 over three orders.
    assert money(average(Decimal("30.01"), 3)) == "10.00"
    # 0.335 to the even cent; rounding the revenue first would give 1.00 / 3 -> 0.33.
    assert money(average(Decimal("1.005"), 3)) == "0.34"


def test_range_bounds_round_up_to_whole_milliseconds() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert ceil_ms(epoch + timedelta(milliseconds=1500)) == 1500
    assert ceil_ms(epoch + timedelta(microseconds=1500_001)) == 1501
    assert ceil_ms(epoch - timedelta(microseconds=1500)) == -1


def test_worst_step_needs_min_sessions_before_the_step() -> None:
    # Step ratios .3, .067, .05: checkout -> purchase drops most, from only 20 sessions.
    summary = summarise(counts(1000, 300, 20, 1), min_sessions=30)
    assert summary.worst is not None
    assert summary.worst.from_stage is Stage.ADD_TO_CART
    summary = summarise(counts(1000, 300, 20, 1), min_sessions=20)
    assert summary.worst is not None
    assert summary.worst.from_stage is Stage.CHECKOUT
    assert summarise(counts(29, 1, 0, 0), min_sessions=30).worst is None


def test_revenue_and_aov_per_currency() -> None:
    sales = (Sales("", 1, Decimal("3.333")), Sales("EUR", 3, Decimal("100.005")))
    summary = summarise(counts(10, 5, 4, 4, sales=sales), min_sessions=30)
    assert summary.revenue == {"(none)": "3.33", "EUR": "100.00"}
    assert summary.aov == {"(none)": "3.33", "EUR": "33.34"}
    assert summary.counts.orders == 4


def report(by: str | None = None, breakdown: tuple[Segment, ...] = ()) -> bytes:
    total = counts(
        1200, 300, 120, 48, sales=(Sales("EUR", 48, Decimal("4800.50")),), carts=(300, 180, 12)
    )
    query = ReportQuery("shop-1", START, END, by)
    built = build_report(ReportRequest(query), ReportCounts(total, 3, 7, breakdown))
    return report_json(built)


def test_json_has_every_key_with_exact_money() -> None:
    shown = orjson.loads(report())
    assert shown["site_id"] == "shop-1"
    assert (shown["from"], shown["to"]) == (
        "2026-03-01T09:30:00+00:00",
        "2026-03-01T10:30:17+00:00",
    )
    assert shown["stages"] == [
        {"stage": "page_view", "sessions": 1200},
        {"stage": "add_to_cart", "sessions": 300},
        {"stage": "checkout", "sessions": 120},
        {"stage": "purchase", "sessions": 48},
    ]
    assert (shown["orders"], shown["revenue"], shown["aov"]) == (
        48,
        {"EUR": "4800.50"},
        {"EUR": "100.01"},
    )
    assert (shown["carts_opened"], shown["carts_abandoned"], shown["carts_recovered"]) == (
        300,
        180,
        12,
    )
    assert (shown["late_events"], shown["invalid_events"]) == (3, 7)
    assert shown["overall_conversion"] == 0.04
    assert shown["add_to_cart_rate"] == 0.25
    assert shown["checkout_completion"] == 0.4
    assert shown["cart_abandonment_rate"] == 0.6
    assert shown["worst_step"] == {
        "from": "page_view", "to": "add_to_cart", "conversion": 0.25, "drop_off": 0.75,
        "sessions_before": 1200,
    }  # fmt: skip
    assert [s["conversion"] for s in shown["steps"]] == [0.25, 0.4, 0.4]
    assert "breakdown" not in shown


def test_breakdown_entries_have_the_funnel_keys_and_show_unknown_as_none() -> None:
    segments = (
        Segment("mobile", counts(700, 100, 30, 5, carts=(100, 80, 1))),
        Segment("", counts(20, 0, 0, 0)),
    )
    shown = orjson.loads(report("device", segments))
    assert shown["by"] == "device"
    assert [entry["key"] for entry in shown["breakdown"]] == ["mobile", "(none)"]
    mobile = shown["breakdown"][0]
    assert mobile["stages"][3] == {"stage": "purchase", "sessions": 5}
    assert (mobile["orders"], mobile["revenue"], mobile["aov"], mobile["carts_opened"]) == (
        0,
        {},
        {},
        100,
    )
    assert shown["breakdown"][1]["worst_step"] is None
    assert "late_events" not in mobile


def test_the_table_fits_80_columns_and_flags_the_worst_step() -> None:
    big = (99_999_999, 20_000_000, 10_000_000, 1_000_000)  # step ratios .2, .5, .1
    segments = (
        Segment("a-very-long-campaign-name-indeed", counts(*big)),
        Segment("", EMPTY),
    )
    total = counts(
        *big,
        sales=(Sales("EUR", 10**6, Decimal("123456789012.345")), Sales("", 1, Decimal(1))),
        carts=(10**8, 9 * 10**7, 10**6),
    )
    query = ReportQuery("shop-1", START, END, "utm_campaign")
    built = build_report(ReportRequest(query), ReportCounts(total, 5, 6, segments))
    table = report_table(built)
    assert max(len(line) for line in table.splitlines()) <= 80
    flagged = [line for line in table.splitlines() if "<- worst step" in line]
    assert len(flagged) == 1
    assert flagged[0].startswith("purchase")
    assert "123,456,789,012.34" in table  # half-even: ...2.345 -> ...2.34
    assert "a-very-long-~" in table
    assert "(none)" in table


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--from", "2026-03-01T10:00:00", "--to", "2026-03-01T11:00:00Z"], "no UTC offset"),
        (["--from", "2026-03-01T11:00:00Z", "--to", "2026-03-01T10:00:00Z"], "before"),
        (
            ["--from", "2026-03-01T10:00:00Z", "--to", "2026-03-01T11:00:00Z", "--by", "page"],
            "invalid choice",
        ),
        (["--from", "0001-01-01T00:00:00+14:00", "--to", "2026-03-01T11:00:00Z"], "out of range"),
        (
            [
                "--from",
                "2026-03-01T10:00:00Z",
                "--to",
                "2026-03-01T11:00:00Z",
                "--min-sessions",
                "-1",
            ],
            "negative",
        ),
    ],
)
def test_cli_refuses_bad_arguments_with_usage_errors(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        raise SystemExit(main(["report", "--site", "shop-1", *args]))
    assert exited.value.code == 2
    assert error in capsys.readouterr().err
