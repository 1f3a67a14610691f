"""The analytics commands of `funnel`: marketing, customers and the spend import."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sinks.customer_queries import DEFAULT_LOYALTY_DAYS, CustomersQuery
from sinks.marketing_queries import (
    DEFAULT_LOOKBACK,
    MARKETING_DIMENSIONS,
    Attribution,
    MarketingQuery,
)
from streams.report.answers import Request
from streams.report.client import ReportError, answer
from streams.report.customers import DEFAULT_PERIODS, CustomersRequest
from streams.report.marketing import MarketingRequest, parse_margin
from streams.report.numbers import parse_instant
from streams.report.segments import SEGMENTS, ScoreBounds
from streams.report.spend_import import SpendImportError, import_spend_file
from streams.settings import Settings

Command = Callable[[Settings, argparse.Namespace], int]


def instant(text: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def print_answer(settings: Settings, route: str, build: Callable[[], Request]) -> int:
    """Print `funnel <route>`'s document: 2 for a bad request (as argparse), 1 if unanswerable."""
    try:
        request = build()
    except ValueError as exc:
        print(f"funnel {route}: {exc}", file=sys.stderr)
        return 2
    try:
        sys.stdout.buffer.write(answer(settings, route, request))
    except ReportError as exc:
        print(f"funnel {route}: {exc}", file=sys.stderr)
        return 1
    return 0


def _marketing(settings: Settings, args: argparse.Namespace) -> int:
    def build() -> MarketingRequest:
        query = MarketingQuery(
            args.site, args.start, args.end, args.by, Attribution(args.attribution),
            timedelta(days=args.lookback_days),
        )  # fmt: skip
        return MarketingRequest(query, parse_margin(args.margin), args.json)

    return print_answer(settings, "marketing", build)


def _customers(settings: Settings, args: argparse.Namespace) -> int:
    def build() -> CustomersRequest:
        query = CustomersQuery(args.site, args.as_of or datetime.now(UTC), args.loyalty_days)
        return CustomersRequest(
            query, args.cohorts, args.periods, args.segments, args.segment,
            as_json=args.json, as_csv=args.csv, bounds=ScoreBounds.parse(args.thresholds),
        )  # fmt: skip

    return print_answer(settings, "customers", build)


def _spend_import(settings: Settings, args: argparse.Namespace) -> int:
    try:
        imported = import_spend_file(
            settings, Path(args.file), site=args.site, skip_invalid=args.skip_invalid
        )
    except SpendImportError as exc:
        for line in exc.lines:
            print(f"funnel spend import: {line}", file=sys.stderr)
        return 1
    for line in imported.skipped:
        print(f"skipped {line}", file=sys.stderr)
    print(f"imported {imported.rows} spend rows, skipped {len(imported.skipped)}", file=sys.stderr)
    return 0


def add_analytics_commands(command: Callable[[str, Command, str], argparse.ArgumentParser]) -> None:
    marketing = command(
        "marketing", _marketing, "Spend, orders, revenue, new customers, CPO/CAC/ROAS/ROMI."
    )
    marketing.add_argument("--site", required=True, help="site id")
    marketing.add_argument("--from", dest="start", required=True, type=instant, metavar="ISO")
    marketing.add_argument("--to", dest="end", required=True, type=instant, metavar="ISO")
    marketing.add_argument("--by", choices=MARKETING_DIMENSIONS, default="utm_source")
    marketing.add_argument(
        "--attribution", choices=[a.value for a in Attribution], default="first_touch"
    )
    marketing.add_argument("--lookback-days", type=int, default=DEFAULT_LOOKBACK.days,
                           help="last_non_direct: how far back a session may start")  # fmt: skip
    marketing.add_argument("--margin", default="1", help="gross margin for ROMI (default 1)")
    marketing.add_argument("--json", action="store_true", help="JSON instead of a table")
    customers = command(
        "customers", _customers, "Customers: repeat rate, CLV, cohorts, RFM/LFRM segments."
    )
    customers.add_argument("--site", required=True, help="site id")
    customers.add_argument("--as-of", type=instant, metavar="ISO", help="default: now")
    customers.add_argument("--cohorts", choices=["month", "week"], help="retention triangle")
    customers.add_argument("--periods", type=int, default=DEFAULT_PERIODS, help="cohort +N")
    customers.add_argument("--segments", action="store_true", help="RFM/LFRM segment table")
    customers.add_argument("--segment", choices=SEGMENTS, help="with --csv: export it")
    customers.add_argument("--csv", action="store_true", help="CSV of --segment's customers")
    customers.add_argument(
        "--loyalty-days", type=int, default=DEFAULT_LOYALTY_DAYS,
        help="L: sessions with activity in these days before --as-of",
    )  # fmt: skip
    customers.add_argument(
        "--thresholds", default="", metavar="DIM=C1,C2,C3,C4;…",
        help="fixed RFM/LFRM score cut points for r, f, m or l (default: ranked quintiles)",
    )  # fmt: skip
    customers.add_argument("--json", action="store_true", help="JSON instead of a table")
    spend = command("spend", _spend_import, "Ad spend: `funnel spend import FILE.csv`.")
    spend.add_argument("action", choices=["import"], help="what to do")
    spend.add_argument("file", help="CSV: date,site_id,utm_source,utm_campaign,cost,currency,…")
    spend.add_argument("--site", help="site id for rows without a site_id column")
    spend.add_argument(
        "--skip-invalid", action="store_true", help="import the good rows of a file with errors"
    )
