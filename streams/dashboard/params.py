"""What the dashboard's JSON endpoints accept: checked here, so a bad URL is a 400 that says why.

Pure (whether a site has data is the routes' question). Messages quote at most a short, repr-escaped
prefix of what was sent, so nothing the client typed is reflected as markup or at length.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sinks.report_queries import BREAKDOWN_DIMENSIONS, ReportQuery
from streams.report.numbers import DEFAULT_MIN_SESSIONS, ReportRequest, parse_instant

# A year and a day: wide enough for year-over-year, narrow enough to answer in seconds.
MAX_RANGE = timedelta(days=366)
MAX_POINTS = 240  # buckets a time series is cut into, at most
# Bucket widths a series picks from: minutes, then hours, then days.
STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800)
_QUOTED = 40
MAX_SITE_ID = 128  # as the event contract allows


class ParamError(ValueError):
    """A parameter the dashboard cannot answer; the message is shown to the user."""


def quoted(value: str) -> str:
    return repr(value if len(value) <= _QUOTED else value[:_QUOTED] + "…")


@dataclass(frozen=True, slots=True)
class Range:
    start: datetime
    end: datetime

    @property
    def step_s(self) -> int:
        """The narrowest bucket width that cuts the range into at most MAX_POINTS buckets."""
        span = (self.end - self.start).total_seconds()
        return next((s for s in STEPS_S if span / s <= MAX_POINTS), STEPS_S[-1])


def _only(params: Mapping[str, str], allowed: Collection[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        names = ", ".join(quoted(name) for name in unknown[:5])
        raise ParamError(f"unknown parameter(s) {names}; allowed: {', '.join(allowed)}")


def _instant(params: Mapping[str, str], name: str) -> datetime:
    text = params.get(name)
    if not text:
        raise ParamError(f"missing parameter {name!r} (an ISO 8601 time with offset)")
    try:
        return parse_instant(text)
    except ValueError:
        raise ParamError(
            f"{name}={quoted(text)} is not an ISO 8601 time with offset, e.g. 2026-11-24T10:00:00Z"
        ) from None


def parse_range(params: Mapping[str, str]) -> Range:
    start, end = _instant(params, "from"), _instant(params, "to")
    if start >= end:
        raise ParamError(f"from ({start.isoformat()}) must be before to ({end.isoformat()})")
    if end - start > MAX_RANGE:
        raise ParamError(
            f"range of {(end - start).days} days is over the {MAX_RANGE.days}-day limit"
        )
    return Range(start, end)


def parse_site(params: Mapping[str, str]) -> str:
    site = params.get("site")
    if not site:
        raise ParamError("missing parameter 'site'")
    if len(site) > MAX_SITE_ID:
        raise ParamError(f"site {quoted(site)} is longer than {MAX_SITE_ID} characters")
    return site


def unknown_site(site: str, sites: Collection[str]) -> ParamError:
    listed = ", ".join(sorted(sites)[:20]) or "none yet"
    return ParamError(f"unknown site {quoted(site)}; sites with data: {listed}")


def parse_report(params: Mapping[str, str]) -> ReportRequest:
    """The report the CLI's `funnel report --json` would print for these parameters."""
    _only(params, ("site", "from", "to", "by", "min_sessions"))
    site = parse_site(params)
    span = parse_range(params)
    by = params.get("by") or None
    if by is not None and by not in BREAKDOWN_DIMENSIONS:
        raise ParamError(
            f"cannot break down by {quoted(by)}; one of {', '.join(BREAKDOWN_DIMENSIONS)}"
        )
    text = params.get("min_sessions", str(DEFAULT_MIN_SESSIONS))
    if not text.isdecimal() or len(text) > 9:
        raise ParamError(f"min_sessions={quoted(text)} is not a whole number of sessions")
    return ReportRequest(ReportQuery(site, span.start, span.end, by), int(text), as_json=True)


def parse_series(params: Mapping[str, str]) -> tuple[str, Range]:
    _only(params, ("site", "from", "to"))
    return parse_site(params), parse_range(params)


def parse_dead_letters(params: Mapping[str, str]) -> Range:
    _only(params, ("from", "to"))
    return parse_range(params)
