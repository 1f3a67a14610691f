"""Render a `Report`: JSON for machines (orjson), a table that fits an 80-column terminal."""

from __future__ import annotations

from typing import Any

import orjson

from sinks.report_queries import FunnelCounts
from streams.funnel.conversion import StepConversion
from streams.funnel.facts import Stage
from streams.report.numbers import FunnelSummary, Report, ratio


def stage_name(stage: Stage) -> str:
    return stage.name.lower()


def render(report: Report, *, as_json: bool) -> bytes:
    return report_json(report) if as_json else report_table(report).encode()


def report_json(report: Report) -> bytes:
    q = report.query
    head: dict[str, Any] = {"site_id": q.site_id, "from": q.start.isoformat()}
    head |= {"to": q.end.isoformat(), "min_sessions": report.min_sessions}
    body = head | _funnel_json(report.total)
    body |= {"late_events": report.late_events, "invalid_events": report.invalid_events}
    if q.by is not None:
        body["by"] = q.by
        body["breakdown"] = [{"key": key} | _funnel_json(s) for key, s in report.breakdown]
    return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)


def _funnel_json(summary: FunnelSummary) -> dict[str, Any]:
    counts = summary.counts
    sessions = dict(zip(Stage, counts.sessions, strict=True))
    return {
        "stages": [{"stage": stage_name(s), "sessions": n} for s, n in sessions.items()],
        "steps": [_step_json(step) for step in summary.steps],
        "overall_conversion": summary.overall,
        "worst_step": None if summary.worst is None else _step_json(summary.worst),
        "add_to_cart_rate": ratio(sessions[Stage.ADD_TO_CART], sessions[Stage.PAGE_VIEW]),
        "checkout_completion": ratio(sessions[Stage.PURCHASE], sessions[Stage.CHECKOUT]),
        "orders": counts.orders,
        "revenue": summary.revenue,
        "aov": summary.aov,
        "carts_opened": counts.carts_opened,
        "carts_abandoned": counts.carts_abandoned,
        "carts_recovered": counts.carts_recovered,
        "cart_abandonment_rate": summary.cart_abandonment,
        "bounced_sessions": counts.bounced_sessions,
        "bounce_rate": ratio(counts.bounced_sessions, counts.viewed_sessions),
        "pages_per_session": _pages_per_session(counts),
    }


def _pages_per_session(counts: FunnelCounts) -> float | None:
    return counts.page_views / counts.viewed_sessions if counts.viewed_sessions else None


def _step_json(step: StepConversion) -> dict[str, Any]:
    return {
        "from": stage_name(step.from_stage),
        "to": stage_name(step.to_stage),
        "conversion": step.ratio,
        "drop_off": None if step.ratio is None else 1 - step.ratio,
        "sessions_before": step.sample_size,
    }


def report_table(report: Report) -> str:
    q, total = report.query, report.total
    lines = [
        f"Funnel  {q.site_id}",
        f"        {q.start.isoformat()}  ->  {q.end.isoformat()}",
        "",
        *_stage_table(total),
        "",
        _worst_line(total, report.min_sessions),
        "",
        *_money_lines(total),
        _cart_line(total),
        _bounce_line(total.counts),
        f"Late events     {report.late_events:>10,}",
        f"Invalid events  {report.invalid_events:>10,}   (all sites; rejected in the range)",
    ]
    if q.by is not None:
        lines += ["", *_breakdown_table(report)]
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _stage_table(summary: FunnelSummary) -> list[str]:
    sessions = summary.counts.sessions
    worst_to = None if summary.worst is None else summary.worst.to_stage
    rows = [f"{'Stage':<14}{'Sessions':>12}{'Step':>10}{'Drop-off':>10}{'Overall':>10}"]
    for stage, count in zip(Stage, sessions, strict=True):
        step = summary.steps[stage - 2] if stage > Stage.PAGE_VIEW else None
        conversion = None if step is None else step.ratio
        drop = None if conversion is None else 1 - conversion
        flag = "  <- worst step" if stage == worst_to else ""
        rows.append(
            f"{stage_name(stage):<14}{count:>12,}{_percent(conversion):>10}"
            f"{_percent(drop):>10}{_percent(ratio(count, sessions[0])):>10}{flag}"
        )
    return rows


def _worst_line(summary: FunnelSummary, min_sessions: int) -> str:
    worst = summary.worst
    if worst is None:
        return f"Worst step      none (no step starts from {min_sessions}+ sessions)"
    return (
        f"Worst step      {stage_name(worst.from_stage)} -> {stage_name(worst.to_stage)}: "
        f"{_percent(None if worst.ratio is None else 1 - worst.ratio)} drop"
    )


def _money_lines(summary: FunnelSummary) -> list[str]:
    lines = [f"Orders          {summary.counts.orders:>10,}"]
    for currency, revenue in summary.revenue.items():
        lines.append(
            f"Revenue {currency:<7} {_amount(revenue):>16}   AOV {_amount(summary.aov[currency])}"
        )
    return lines


def _amount(text: str) -> str:
    # Thousands separators for reading only; the JSON keeps the plain exact string.
    whole, _, cents = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{cents}"


def _cart_line(summary: FunnelSummary) -> str:
    c = summary.counts
    return (
        f"Carts opened    {c.carts_opened:>10,}   abandoned {c.carts_abandoned:,} "
        f"({_percent(summary.cart_abandonment)}), recovered {c.carts_recovered:,}"
    )


def _bounce_line(counts: FunnelCounts) -> str:
    pages = _pages_per_session(counts)
    rate = _percent(ratio(counts.bounced_sessions, counts.viewed_sessions))
    shown_pages = "-" if pages is None else f"{pages:.2f}"
    return (
        f"Bounced         {counts.bounced_sessions:>10,}   {rate} of viewed sessions; "
        f"{shown_pages} pages/session"
    )


def _breakdown_table(report: Report) -> list[str]:
    by = report.query.by or ""
    # Session counts up to 99,999,999 keep their columns; orders and money are in the JSON.
    rows = [
        f"{'By ' + by:<14}{'Views':>11}{'Carts':>10}{'Checkout':>10}{'Bought':>10}"
        f"{'Overall':>8}  Worst step"
    ]
    for key, summary in report.breakdown:
        s = summary.counts.sessions
        worst = "-" if summary.worst is None else _short_step(summary.worst)
        label = key if len(key) <= 13 else key[:12] + "~"
        rows.append(
            f"{label:<14}{s[0]:>11,}{s[1]:>10,}{s[2]:>10,}{s[3]:>10,}"
            f"{_percent(summary.overall):>8}  {worst}"
        )
    return rows


_SHORT = {
    Stage.PAGE_VIEW: "view",
    Stage.ADD_TO_CART: "cart",
    Stage.CHECKOUT: "checkout",
    Stage.PURCHASE: "buy",
}


def _short_step(step: StepConversion) -> str:
    return f"{_SHORT[step.from_stage]}->{_SHORT[step.to_stage]}"
