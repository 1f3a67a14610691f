"""The report's derived numbers (conversions, worst step, money) from the counts SQL returns.

Pure: the numbers come in as `sinks.report_queries.ReportCounts`, time comes in with the request.
Money is exact: revenue is summed as decimals in ClickHouse and rounded here, once, to cents
(banker's rounding, like the ledger); AOV divides the exact revenue, not the rounded one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from sinks.report_queries import FunnelCounts, ReportCounts, ReportQuery
from streams.funnel.conversion import StepConversion, step_conversions, worst_step

DEFAULT_MIN_SESSIONS = 30
UNKNOWN = "(none)"  # how an empty dimension value or currency is shown
_CENT = Decimal("0.01")


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date-time with an explicit offset ('Z' or ±HH:MM), as UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset; add one, e.g. {text}Z or {text}+02:00")
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range in UTC") from None


def money(amount: Decimal) -> str:
    # Wide enough that quantizing never runs out of digits (the column is Decimal(38, 6)).
    with localcontext() as context:
        context.prec = 60
        return str(amount.quantize(_CENT, rounding=ROUND_HALF_EVEN))


def average(total: Decimal, count: int) -> Decimal:
    with localcontext() as context:
        context.prec = 60
        return total / count


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def require(params: Mapping[str, str], *names: str) -> None:
    """ValueError naming the endpoint parameters that are missing or empty."""
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise ValueError(f"missing parameter(s): {', '.join(missing)}")


def shown(key: str) -> str:
    return key or UNKNOWN


@dataclass(frozen=True, slots=True)
class ReportRequest:
    query: ReportQuery
    min_sessions: int = DEFAULT_MIN_SESSIONS
    as_json: bool = False

    def __post_init__(self) -> None:
        if self.min_sessions < 0:
            raise ValueError("min_sessions must not be negative")

    def as_params(self) -> dict[str, str]:
        """URL query parameters for the worker's report endpoint."""
        q = self.query
        params = {"site": q.site_id, "from": q.start.isoformat(), "to": q.end.isoformat()}
        if q.by is not None:
            params["by"] = q.by
        return params | {
            "min_sessions": str(self.min_sessions),
            "format": "json" if self.as_json else "table",
        }

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> ReportRequest:
        """The inverse of `as_params`; ValueError names what is missing or wrong."""
        require(params, "site", "from", "to")
        query = ReportQuery(
            params["site"],
            parse_instant(params["from"]),
            parse_instant(params["to"]),
            params.get("by") or None,
        )
        output = params.get("format", "table")
        if output not in ("json", "table"):
            raise ValueError("format must be json or table")
        try:
            min_sessions = int(params.get("min_sessions", DEFAULT_MIN_SESSIONS))
        except ValueError:
            raise ValueError("min_sessions must be a whole number") from None
        return cls(query, min_sessions, as_json=output == "json")


@dataclass(frozen=True, slots=True)
class FunnelSummary:
    """One funnel (a site, or one breakdown value) with what is derived from its counts."""

    counts: FunnelCounts
    steps: tuple[StepConversion, ...]
    worst: StepConversion | None  # None while no step has enough sessions to judge
    revenue: dict[str, str]  # currency -> amount to the cent
    aov: dict[str, str]

    @property
    def overall(self) -> float | None:
        return ratio(self.counts.sessions[-1], self.counts.sessions[0])

    @property
    def cart_abandonment(self) -> float | None:
        return ratio(self.counts.carts_abandoned, self.counts.carts_opened)


def summarise(counts: FunnelCounts, min_sessions: int) -> FunnelSummary:
    return FunnelSummary(
        counts=counts,
        steps=step_conversions(counts.sessions),
        worst=worst_step(counts.sessions, min_sessions),
        revenue={shown(s.currency): money(s.revenue) for s in counts.sales},
        aov={shown(s.currency): money(average(s.revenue, s.orders)) for s in counts.sales},
    )


@dataclass(frozen=True, slots=True)
class Report:
    query: ReportQuery
    min_sessions: int
    total: FunnelSummary
    late_events: int
    invalid_events: int
    breakdown: tuple[tuple[str, FunnelSummary], ...]  # (shown key, summary)


def build_report(request: ReportRequest, counts: ReportCounts) -> Report:
    n = request.min_sessions
    return Report(
        query=request.query,
        min_sessions=n,
        total=summarise(counts.total, n),
        late_events=counts.late_events,
        invalid_events=counts.invalid_events,
        breakdown=tuple((shown(s.key), summarise(s.counts, n)) for s in counts.breakdown),
    )
