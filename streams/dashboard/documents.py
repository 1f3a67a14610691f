"""The dashboard's JSON documents beyond the report (which is `streams.report.view.report_json`).

Pure: rows in, bytes out. A series has one point per bucket, empty buckets included, so a chart
shows a gap in traffic as zero rather than joining its neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from sinks.dashboard_queries import ReasonCount, SeriesPoint
from sinks.report_queries import STAGE_COUNT
from streams.dashboard.params import Range
from streams.funnel.facts import Stage
from streams.report.numbers import ratio
from streams.report.view import stage_name


def _dumps(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body, option=orjson.OPT_APPEND_NEWLINE)


def sites_json(sites: Sequence[str], *, live: bool, reports: Sequence[str]) -> bytes:
    """The sites with data, whether a running worker still adds to them, and which optional
    reports (marketing, customers) this endpoint serves, so the page asks only for those."""
    return _dumps({"sites": list(sites), "live": live, "reports": list(reports)})


def series_json(site_id: str, span: Range, points: Sequence[SeriesPoint]) -> bytes:
    step_s = span.step_s
    by_index = {point.index: point.sessions for point in points}
    buckets = -(-int((span.end - span.start).total_seconds()) // step_s)
    rows = []
    for index in range(buckets):
        sessions = by_index.get(index, (0,) * STAGE_COUNT)
        rows.append(
            {
                "at": (span.start + timedelta(seconds=index * step_s)).isoformat(),
                "sessions": list(sessions),
                # Entries in one bucket, not a cohort: purchases / page views of that bucket.
                "conversion": ratio(sessions[-1], sessions[0]),
            }
        )
    return _dumps(
        {
            "site_id": site_id,
            "from": span.start.isoformat(),
            "to": span.end.isoformat(),
            "step_s": step_s,
            "stages": [stage_name(stage) for stage in Stage],
            "points": rows,
        }
    )


def dead_letters_json(span: Range, reasons: Sequence[ReasonCount]) -> bytes:
    return _dumps(
        {
            "from": span.start.isoformat(),
            "to": span.end.isoformat(),
            "total": sum(r.count for r in reasons),
            "reasons": [
                {"reason_code": r.reason_code, "count": r.count, "example": r.example}
                for r in reasons
            ],
        }
    )
