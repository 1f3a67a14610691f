"""The small part of Grafana's dashboard model we use, and how it becomes dashboard JSON.

Queries carry what their result columns mean (`Column`), which Grafana never sees: the tests
run every ClickHouse query against chDB and check the columns against it.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Json = dict[str, Any]

CLICKHOUSE: Json = {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}
PROMETHEUS: Json = {"type": "prometheus", "uid": "prometheus"}

# sqlds' format option, which the ClickHouse plugin's backend reads: 0 = time series, 1 = table.
_FORMAT_TIME_SERIES = 0
_FORMAT_TABLE = 1
_GRID_WIDTH = 24


class Kind(enum.Enum):
    """What a result column holds; decides the type and range the tests accept."""

    TIME = "time"  # DateTime bucket start, the time axis of a time series
    LABEL = "label"  # a name: stage, step, segment, currency, status, reason
    COUNT = "count"  # sessions, orders, carts: integers >= 0
    RATIO = "ratio"  # a share in [0, 1]; NULL when its denominator is 0
    MONEY = "money"  # Decimal >= 0
    SECONDS = "seconds"  # durations >= 0
    QUOTIENT = "quotient"  # ROAS, CAC: Float64 >= 0, may exceed 1; NULL when its divisor is 0


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind


@dataclass(frozen=True, slots=True)
class Sql:
    """A ClickHouse query with the plugin's macros and `${site}` / `${breakdown}` variables.

    `funnel_columns`: columns that hold stage counts in funnel order, so each row's values may
    only fall from left to right. `funnel_rows`: a column whose values may only fall down the
    rows (one row per stage, in funnel order).
    """

    sql: str
    columns: tuple[Column, ...]
    time_series: bool = False
    funnel_columns: tuple[str, ...] = ()
    funnel_rows: str | None = None

    def target(self, ref_id: str) -> Json:
        return {
            "refId": ref_id,
            "datasource": CLICKHOUSE,
            "editorType": "sql",
            "queryType": "timeSeries" if self.time_series else "table",
            "format": _FORMAT_TIME_SERIES if self.time_series else _FORMAT_TABLE,
            "rawSql": self.sql,
        }


@dataclass(frozen=True, slots=True)
class PromQL:
    expr: str
    legend: str = ""

    def target(self, ref_id: str) -> Json:
        return {
            "refId": ref_id,
            "datasource": PROMETHEUS,
            "expr": self.expr,
            "legendFormat": self.legend,
            "range": True,
        }


Query = Sql | PromQL


@dataclass(frozen=True, slots=True)
class Panel:
    """One panel; `kind` is the Grafana panel type (stat, table, timeseries, bargauge, ...)."""

    title: str
    description: str  # what the query answers; shown in Grafana's panel info and the README
    kind: str
    queries: tuple[Query, ...]
    unit: str = ""
    width: int = 12
    height: int = 8
    ratio: bool = False  # every field a share: percent, axis from 0 to 1 (PromQL panels)

    def __post_init__(self) -> None:
        sources = {type(q) for q in self.queries}
        if len(sources) != 1:
            raise ValueError(f"panel {self.title!r} must use exactly one datasource")
        if not 0 < self.width <= _GRID_WIDTH:
            raise ValueError(f"panel {self.title!r} width must be within 1..{_GRID_WIDTH}")

    @property
    def datasource(self) -> Json:
        return CLICKHOUSE if isinstance(self.queries[0], Sql) else PROMETHEUS

    def to_json(self, panel_id: int, x: int, y: int) -> Json:
        defaults: Json = {"unit": self.unit} if self.unit else {}
        if self.ratio:
            defaults |= {"unit": "percentunit", "min": 0, "max": 1}
        return {
            "id": panel_id,
            "type": self.kind,
            "title": self.title,
            "description": self.description,
            "datasource": self.datasource,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "targets": [q.target(chr(ord("A") + i)) for i, q in enumerate(self.queries)],
            "fieldConfig": {"defaults": defaults, "overrides": self._overrides()},
            "options": _OPTIONS.get(self.kind, {}),
        }

    def _overrides(self) -> list[Json]:
        """Units from what each SQL column holds, so mixed panels show % and counts right."""
        units = {
            column.name: _UNITS[column.kind]
            for query in self.queries
            if isinstance(query, Sql)
            for column in query.columns
            if column.kind in _UNITS
        }
        return [
            {
                "matcher": {"id": "byName", "options": name},
                "properties": [{"id": "unit", "value": unit}]
                + (_SHARE_RANGE if unit == "percentunit" else []),
            }
            for name, unit in units.items()
        ]


_UNITS = {Kind.RATIO: "percentunit", Kind.SECONDS: "s"}
_SHARE_RANGE: list[Json] = [{"id": "min", "value": 0}, {"id": "max", "value": 1}]
_REDUCE_ALL_VALUES: Json = {"calcs": ["lastNotNull"], "fields": "", "values": True}
_OPTIONS: dict[str, Json] = {
    "stat": {"reduceOptions": _REDUCE_ALL_VALUES, "colorMode": "value", "graphMode": "none"},
    "bargauge": {"reduceOptions": _REDUCE_ALL_VALUES, "orientation": "horizontal"},
    "piechart": {"reduceOptions": _REDUCE_ALL_VALUES, "legend": {"displayMode": "table"}},
    "table": {"showHeader": True},
    "timeseries": {"legend": {"displayMode": "list", "placement": "bottom"}},
}


@dataclass(frozen=True, slots=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]
    variables: tuple[Json, ...] = ()
    tags: tuple[str, ...] = field(default=("funnelstream",))

    def panels(self) -> list[Panel]:
        return [panel for row in self.rows for panel in row.panels]

    def to_json(self) -> Json:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "utc",
            "editable": True,
            "graphTooltip": 1,
            "schemaVersion": 39,
            "version": 1,
            "refresh": "1m",
            "time": {"from": "now-24h", "to": "now"},
            "templating": {"list": list(self.variables)},
            "annotations": {"list": []},
            "links": [
                {
                    "type": "dashboards",
                    "tags": ["funnelstream"],
                    "asDropdown": True,
                    "title": "Funnelstream",
                }
            ],
            "panels": _layout(self.rows),
        }


def _layout(rows: Sequence[Row]) -> list[Json]:
    """Rows one under the other; panels left to right, wrapping at Grafana's 24 columns."""
    out: list[Json] = []
    next_id = 1
    y = 0
    for row in rows:
        out.append(
            {
                "id": next_id,
                "type": "row",
                "title": row.title,
                "collapsed": False,
                "gridPos": {"h": 1, "w": _GRID_WIDTH, "x": 0, "y": y},
                "panels": [],
            }
        )
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for panel in row.panels:
            if x + panel.width > _GRID_WIDTH:
                y += line_height
                x, line_height = 0, 0
            out.append(panel.to_json(next_id, x, y))
            next_id += 1
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return out


def site_variable() -> Json:
    """Sites that have funnel data in the selected time range (single value: `'${site}'`)."""
    sql = (
        "SELECT DISTINCT site_id FROM funnel.stage_entries "
        "WHERE $__timeFilter(reached_at) ORDER BY site_id"
    )
    return {
        "name": "site",
        "label": "Site",
        "type": "query",
        "datasource": CLICKHOUSE,
        "query": sql,
        "definition": sql,
        "refresh": 2,  # on time-range change
        "sort": 1,
        "multi": False,
        "includeAll": False,
        "current": {},
        "options": [],
        "hide": 0,
    }


# Column name -> how analysts call it. The values are spliced into SQL as identifiers, so only
# these (a custom variable's fixed options) may ever reach a query.
BREAKDOWNS: tuple[tuple[str, str], ...] = (
    ("Channel", "utm_source"),
    ("Campaign", "utm_campaign"),
    ("Device", "device"),
    ("Country", "country"),
    ("Variant", "variant"),
)


def breakdown_variable() -> Json:
    first_text, first_value = BREAKDOWNS[0]
    return {
        "name": "breakdown",
        "label": "Breakdown",
        "type": "custom",
        "query": ",".join(f"{text} : {value}" for text, value in BREAKDOWNS),
        "current": {"text": first_text, "value": first_value},
        "options": [
            {"text": text, "value": value, "selected": value == first_value}
            for text, value in BREAKDOWNS
        ],
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }
