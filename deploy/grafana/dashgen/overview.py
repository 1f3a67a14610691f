"""Funnel overview: one site's funnel, conversion, carts and orders over the selected range."""

from __future__ import annotations

from deploy.grafana.dashgen import sql, sql_orders_carts
from deploy.grafana.dashgen.model import (
    Dashboard,
    Panel,
    PromQL,
    Row,
    breakdown_variable,
    site_variable,
)


def _funnel() -> Row:
    return Row(
        "Funnel",
        (
            Panel(
                "Overall conversion",
                "Purchasing sessions / sessions with a page view in the range.",
                "stat",
                (sql.overall_conversion(),),
                width=6,
                height=5,
            ),
            Panel(
                "Worst step",
                "The step that loses the largest share of its sessions: fix this first.",
                "stat",
                (sql.worst_step(),),
                width=6,
                height=5,
            ),
            Panel(
                "Time to convert",
                "Median and 90th percentile from first page view to purchase.",
                "stat",
                (sql.time_to_convert(),),
                width=6,
                height=5,
            ),
            Panel(
                "Time to convert, distribution",
                "Purchasing sessions by how long they took from first page view.",
                "barchart",
                (sql.time_to_convert_buckets(),),
                width=6,
                height=5,
            ),
            Panel(
                "Sessions per stage",
                "How many sessions reached each stage in the range (distinct sessions).",
                "bargauge",
                (sql.stage_sessions(),),
            ),
            Panel(
                "Step conversion",
                "Of the sessions in each stage, the share that reached the next one, "
                "with the sample (sessions in the earlier stage).",
                "table",
                (sql.step_conversion(),),
            ),
        ),
    )


def _over_time() -> Row:
    return Row(
        "Over time",
        (
            Panel(
                "Stage entries",
                "Sessions entering each stage per interval.",
                "timeseries",
                (sql.stage_entries_over_time(),),
            ),
            Panel(
                "Conversion by first visit",
                "Of the sessions whose first page view fell in each interval, the share "
                "that went on to add to cart, check out and purchase.",
                "timeseries",
                (sql.cohort_conversion_over_time(),),
            ),
            Panel(
                "Live step conversion (Prometheus)",
                "Rolling step conversion over the last 15 min and 1 h of event time, "
                "all workers; what the conversion-drop alert watches.",
                "timeseries",
                (
                    PromQL(
                        'site_step_window:funnel_step_conversion:ratio{site="${site}"}',
                        "{{step}} ({{window}})",
                    ),
                ),
                ratio=True,
                width=24,
            ),
        ),
    )


def _carts_and_orders() -> Row:
    return Row(
        "Carts and orders",
        (
            Panel(
                "Cart abandonment",
                "Of the carts opened in the range that closed, the share abandoned, and "
                "of those, the share recovered by a later purchase.",
                "stat",
                (sql_orders_carts.cart_abandonment(),),
                width=8,
            ),
            Panel(
                "Carts by final status",
                "Carts opened in the range by final status (open, abandoned, converted, "
                "recovered) and their value.",
                "table",
                (sql_orders_carts.carts_by_status(),),
                width=8,
            ),
            Panel(
                "Orders, revenue and AOV",
                "Distinct orders, revenue and average order value, per currency.",
                "table",
                (sql_orders_carts.orders_by_currency(),),
                width=8,
            ),
            Panel(
                "Revenue",
                "Revenue per interval, per currency.",
                "timeseries",
                (sql_orders_carts.revenue_over_time(),),
                width=24,
            ),
        ),
    )


def _breakdown() -> Row:
    return Row(
        "Breakdown",
        (
            Panel(
                "Funnel by ${breakdown}",
                "Stage sessions and overall conversion per value of the chosen "
                "first-touch dimension.",
                "table",
                (sql.funnel_by("${breakdown}"),),
                width=24,
            ),
        ),
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid="funnel-overview",
        title="Funnel overview",
        description="One site's funnel from ClickHouse (report semantics), live from Prometheus.",
        variables=(site_variable(), breakdown_variable()),
        rows=(
            _funnel(),
            _over_time(),
            _carts_and_orders(),
            _breakdown(),
        ),
    )
