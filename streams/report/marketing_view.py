"""Render the marketing document: JSON as served, or a table sorted by spend."""

from __future__ import annotations

from typing import Any

import orjson

from streams.report.numbers import UNKNOWN

_COLUMNS = (
    ("Channel", "key", 16), ("Cur", "currency", 4), ("Spend", "spend", 12),
    ("Clicks", "clicks", 8), ("Sessions", "sessions", 9), ("Orders", "orders", 7),
    ("Guest", "guest_orders", 6), ("Revenue", "revenue", 13), ("New", "new_customers", 6),
    ("CPO", "cpo", 9), ("CAC", "cac", 9), ("ROAS", "roas", 7), ("ROMI", "romi", 7),
    ("Conv", "conversion", 7),
)  # fmt: skip


def render_marketing(document: dict[str, Any], *, as_json: bool) -> bytes:
    if as_json:
        return orjson.dumps(document, option=orjson.OPT_APPEND_NEWLINE)
    return marketing_table(document).encode()


def marketing_table(document: dict[str, Any]) -> str:
    lines = [
        f"Marketing  {document['site']}  by {document['by']}, attribution "
        f"{document['attribution']} (lookback {document['lookback_days']} d), "
        f"margin {document['margin']}",
        f"           {document['from']}  ->  {document['to']}",
        "",
        _header(),
        *(_line(row) for row in document["channels"]),
        "",
        *(_line({"key": "TOTAL"} | row) for row in document["totals"]),
        "",
        f"Spend days: {document['spend_days']}.",
        f"FX: {document['fx']}.",
        "Guest orders (no user_id) count in orders and revenue, never as customers.",
    ]
    return "\n".join(lines) + "\n"


def _header() -> str:
    first, _, width = _COLUMNS[0]
    return f"{first:<{width}}" + "".join(f"{t:>{w}}" for t, _, w in _COLUMNS[1:])


def _line(row: dict[str, Any]) -> str:
    cells = [_cell(name, row[name]) for _, name, _ in _COLUMNS]
    key, width = cells[0], _COLUMNS[0][2]
    key = key if len(key) < width else key[: width - 2] + "~"
    return f"{key:<{width}}" + "".join(
        f"{cell:>{w}}" for cell, (_, _, w) in zip(cells[1:], _COLUMNS[1:], strict=True)
    )


def _cell(name: str, value: Any) -> str:
    if value is None:
        return UNKNOWN if name == "currency" else "-"
    if name == "conversion":
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
