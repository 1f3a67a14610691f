"""Column order of each table we insert into; must match sinks/migrations (a test checks).

Rows (or whole columns) are built by column name and put in this order by `ordered_row` (or
`ordered_columns`), so a value can only land in the column it names (clickhouse-connect inserts
with `column_names=`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from operator import itemgetter
from typing import Any

DIMENSIONS = ("utm_source", "utm_medium", "utm_campaign", "device", "country", "variant")

EVENTS_RAW = (
    "site_id", "session_id", "event_id", "event_type", "occurred_at", "received_at", "late",
    "future", "capped", "late_copy", "user_id", "utm_source", "utm_medium", "utm_campaign",
    "referrer", "device", "country", "variant", "page", "value", "currency", "order_id", "cart_id",
    "source_partition", "source_offset", "raw",
)  # fmt: skip
STAGE_ENTRIES = (
    "site_id", "stage", "reached_at", "session_id", "session_start", "user_id", *DIMENSIONS,
    "time_to_convert_ms",
)  # fmt: skip
ORDERS = (
    "site_id", "order_id", "occurred_at", "session_id", "session_start", "user_id", "value",
    "currency",
    "item_count", "reached_checkout", *DIMENSIONS,
)  # fmt: skip
CARTS = (
    "site_id", "session_id", "session_start", "cart_seq", "version", "status", "opened_at",
    "closed_at", "recovered_at", "value", "currency", "items", "last_stage", "user_id", *DIMENSIONS,
)  # fmt: skip
DEAD_LETTERS = (
    "source_topic", "source_partition", "source_offset", "rejected_at", "reason_code", "reason",
    "message_key", "payload",
)  # fmt: skip

AD_SPEND = (
    "site_id", "day", "utm_source", "utm_campaign", "currency", "cost", "clicks", "impressions",
    "updated_at",
)  # fmt: skip

COLUMNS: dict[str, tuple[str, ...]] = {
    "events_raw": EVENTS_RAW,
    "stage_entries": STAGE_ENTRIES,
    "orders": ORDERS,
    "carts": CARTS,
    "dead_letters": DEAD_LETTERS,
    "ad_spend": AD_SPEND,
}

_GETTERS = {table: itemgetter(*columns) for table, columns in COLUMNS.items()}
_NAMES = {table: frozenset(columns) for table, columns in COLUMNS.items()}


class RowShapeError(ValueError):
    """A row (or a set of columns) names a column its table does not have, or leaves one out;
    or its columns differ in length."""


def ordered_row(table: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
    """`values` by column name, as a tuple in the table's column order."""
    columns = COLUMNS[table]
    # Equal sizes and every column present (itemgetter raises otherwise): no unknown names.
    try:
        if len(values) == len(columns):
            row: tuple[Any, ...] = _GETTERS[table](values)
            return row
    except KeyError:
        pass
    raise _shape_error(table, "row", values.keys())


def ordered_columns(table: str, columns: Mapping[str, Sequence[Any]]) -> list[Sequence[Any]]:
    """`columns` by name, as a list in the table's column order; all of one length."""
    if columns.keys() != _NAMES[table]:
        raise _shape_error(table, "columns", columns.keys())
    ordered = [columns[name] for name in COLUMNS[table]]
    lengths = {len(column) for column in ordered}
    if len(lengths) > 1:
        raise RowShapeError(f"{table} columns: unequal lengths {sorted(lengths)}")
    return ordered


def _shape_error(table: str, what: str, names: Set[str]) -> RowShapeError:
    missing = sorted(_NAMES[table] - names)
    unknown = sorted(names - _NAMES[table])
    return RowShapeError(f"{table} {what}: missing columns {missing}, unknown columns {unknown}")
