"""Funnel breakdowns: the funnel per channel, campaign, device, country and A/B variant."""

from __future__ import annotations

from deploy.grafana.dashgen import sql, sql_orders_carts
from deploy.grafana.dashgen.model import (
    BREAKDOWNS,
    Dashboard,
    Panel,
    Row,
    breakdown_variable,
    site_variable,
)


def dashboard() -> Dashboard:
    per_dimension = tuple(
        Panel(
            f"Funnel by {name.lower()} ({column})",
            f"Stage sessions and overall conversion per {name.lower()} (first touch).",
            "table",
            (sql.funnel_by(column),),
        )
        for name, column in BREAKDOWNS
    )
    return Dashboard(
        uid="funnel-breakdowns",
        title="Funnel breakdowns",
        description="Where a site's funnel differs: channel, campaign, device, country, variant.",
        variables=(site_variable(), breakdown_variable()),
        rows=(
            Row("Funnel per dimension", per_dimension),
            Row(
                "By ${breakdown}",
                (
                    Panel(
                        "Conversion by first visit, per ${breakdown}",
                        "Of the sessions whose first page view fell in each interval, the share "
                        "that purchased, per value of the chosen dimension.",
                        "timeseries",
                        (sql.cohort_conversion_by("${breakdown}"),),
                        width=24,
                    ),
                    Panel(
                        "Orders and revenue by ${breakdown}",
                        "Distinct orders, revenue and average order value per value of the "
                        "chosen dimension and currency.",
                        "table",
                        (sql_orders_carts.orders_by("${breakdown}"),),
                    ),
                    Panel(
                        "Cart abandonment by ${breakdown}",
                        "Closed carts, abandonment and recovery rates per value of the chosen "
                        "dimension.",
                        "table",
                        (sql_orders_carts.cart_abandonment_by("${breakdown}"),),
                    ),
                ),
            ),
        ),
    )
