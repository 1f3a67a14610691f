"""The `funnel customers` document (JSON as served), its table, and the segment CSV export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from sinks.customer_queries import CustomerFacts
from streams.report.customers import CustomersRequest, cohorts, divide, summary
from streams.report.numbers import money
from streams.report.segments import DIMENSIONS, SEGMENTS, Scored, score

CSV_HEADER = (
    "user_id", "segment", "r", "f", "m", "l", "recency_days", "frequency", "monetary",
    "last_order",
)  # fmt: skip


def customers_document(request: CustomersRequest, facts: CustomerFacts) -> dict[str, Any]:
    q = request.query
    head = {"site": q.site_id, "as_of": q.as_of.isoformat(), "loyalty_days": q.loyalty_days}
    document: dict[str, Any] = head | _money_strings(summary(facts, q.as_of))
    if request.cohorts is not None:
        document["cohort_period"] = request.cohorts
        document["cohorts"] = cohorts(facts, q.as_of, request.cohorts, request.periods)
    if request.segments:
        scored = score(list(facts.customers.values()), q.as_of, request.bounds)
        document["segments"] = _segments(scored)
        document["score_thresholds"] = {
            dim: [str(c) for c in request.bounds.cuts[dim]] if dim in request.bounds.cuts
            else "quintiles"
            for dim in DIMENSIONS
        }  # fmt: skip
    return document


def _money_strings(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, dict):
        return {k: _money_strings(v) for k, v in value.items()}
    return value


def _segments(scored: list[Scored]) -> list[dict[str, Any]]:
    rows = []
    for name in SEGMENTS:
        members = [s for s in scored if s.segment == name]
        revenue: dict[str, Decimal] = {}
        for s in members:
            for currency, amount in s.customer.revenue.items():
                revenue[currency] = revenue.get(currency, Decimal(0)) + amount
        n = len(members)

        def mean(values: list[int], n: int = n) -> float | None:
            average = divide(sum(values), n)
            return None if average is None else float(average)

        rows.append({
            "segment": name, "customers": n,
            "revenue": {cur: money(revenue[cur]) for cur in sorted(revenue)},
            "avg_r": mean([s.r for s in members]), "avg_f": mean([s.f for s in members]),
            "avg_m": mean([s.m for s in members]), "avg_l": mean([s.loyalty for s in members]),
        })  # fmt: skip
    return rows


def segment_csv(request: CustomersRequest, facts: CustomerFacts) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for s in score(list(facts.customers.values()), request.query.as_of, request.bounds):
        if s.segment != request.segment:
            continue
        last = datetime.fromtimestamp(s.customer.last_order_ms / 1000, tz=UTC)
        writer.writerow([
            s.customer.user_id, s.segment, s.r, s.f, s.m, s.loyalty, s.recency_days,
            s.customer.orders,
            ";".join(f"{cur} {money(v)}" for cur, v in sorted(s.customer.revenue.items())),
            last.isoformat(timespec="milliseconds"),
        ])  # fmt: skip
    return out.getvalue().encode()


def render_customers(request: CustomersRequest, facts: CustomerFacts) -> bytes:
    if request.as_csv:
        return segment_csv(request, facts)
    document = customers_document(request, facts)
    if request.as_json:
        return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
    return customers_table(document).encode()


def customers_table(d: dict[str, Any]) -> str:
    clv = d["predictive_clv"]
    lines = [
        f"Customers  {d['site']}  as of {d['as_of']}",
        "",
        f"Customers             {d['customers']:>10,}",
        f"Guest orders          {d['guest_orders']:>10,}   (no user_id; never customers)",
        f"Repeat customers      {d['repeat_customers']:>10,}   "
        f"rate {_pct(d['repeat_purchase_rate'])}",
        f"Orders per customer   {_num(d['orders_per_customer']):>10}",
    ]  # fmt: skip
    for cur in d["aov"]:
        lines.append(
            f"{cur}: revenue {d['revenue'][cur]}  AOV {d['aov'][cur]}  historical CLV "
            f"{d['historical_clv'][cur]}  CLV/AOV {_num(d['clv_to_aov'][cur])} (rule: 3-4)"
        )
    lines += ["", f"Predictive CLV: {clv['formula']}"]
    lines.append("  inputs: " + ", ".join(f"{k} {_shown(v)}" for k, v in clv["inputs"].items()))
    lines.append(f"  value: {_shown(clv['value'])}")
    if "cohorts" in d:
        lines += ["", f"Retention by {d['cohort_period']} of first order (share ordering in +k)"]
        for row in d["cohorts"]:
            shares = " ".join(f"{_pct(s):>6}" for s in row["retention"])
            lines.append(f"{row['cohort']:<11}{row['size']:>7,}  {shares}")
    if "segments" in d:
        scoring = ", ".join(
            f"{dim.upper()} {cuts if isinstance(cuts, str) else ','.join(cuts)}"
            for dim, cuts in d["score_thresholds"].items()
        )
        lines += ["", f"Scores 1-5: {scoring}"]
        lines += [f"{'Segment':<20}{'Customers':>10}{'R':>6}{'F':>6}{'M':>6}{'L':>6}  Revenue"]
        for row in d["segments"]:
            revenue = ", ".join(f"{c} {v}" for c, v in row["revenue"].items())
            lines.append(
                f"{row['segment']:<20}{row['customers']:>10,}{_num(row['avg_r']):>6}"
                f"{_num(row['avg_f']):>6}{_num(row['avg_m']):>6}{_num(row['avg_l']):>6}  {revenue}"
            )
    return "\n".join(lines) + "\n"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_shown(v)}" for k, v in value.items()) or "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return "-" if value is None else str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
