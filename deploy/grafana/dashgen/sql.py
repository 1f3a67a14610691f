"""ClickHouse queries shared by the funnel dashboards, with the report's semantics.

- A stage's sessions: uniqExact((session_id, session_start)) of stage_entries reached in the
  range (replays and unmerged parts collapse). Steps divide consecutive stages.
- Cohorts ("conversion over time"): sessions by the interval of their first page view, and the
  furthest stage each reached, however late; a share of a cohort is always within [0, 1].
- Orders and carts: `sql_orders_carts`.

Every query is for one site (`'${site}'`), so (session_id, session_start) identifies a session
(a session_id reused after expiry is a new session with a later start). Aliases
never reuse a column name: ClickHouse would substitute the alias inside its own aggregate.
"""

from __future__ import annotations

from deploy.grafana.dashgen.model import Column, Kind, Sql

STAGES = ("page_view", "add_to_cart", "checkout", "purchase")
SITE = "site_id = '${site}'"
_STAGE_ARRAY = "['page_view', 'add_to_cart', 'checkout', 'purchase']"
STAGE_NAME = f"transform(stage, [1, 2, 3, 4], {_STAGE_ARRAY}, 'unknown')"

_STAGE_COUNTS = f"""
    SELECT
        uniqExactIf((session_id, session_start), stage = 1) AS page_view,
        uniqExactIf((session_id, session_start), stage = 2) AS add_to_cart,
        uniqExactIf((session_id, session_start), stage = 3) AS checkout,
        uniqExactIf((session_id, session_start), stage = 4) AS purchase
    FROM funnel.stage_entries
    WHERE {SITE} AND $__timeFilter(reached_at)"""


def segment(column: str) -> str:
    """A dimension value as a label; first-touch dimensions are '' when the event had none."""
    return f"if(toString({column}) = '', '(none)', toString({column}))"


def stage_sessions() -> Sql:
    return Sql(
        f"""SELECT stage_name, sessions
FROM ({_STAGE_COUNTS}
)
ARRAY JOIN
    {_STAGE_ARRAY} AS stage_name,
    [page_view, add_to_cart, checkout, purchase] AS sessions""",
        (Column("stage_name", Kind.LABEL), Column("sessions", Kind.COUNT)),
        funnel_rows="sessions",
    )


_STEPS = f"""SELECT step, if(sample > 0, converted / sample, NULL) AS conversion, sample
FROM ({_STAGE_COUNTS}
)
ARRAY JOIN
    ['page_view → add_to_cart', 'add_to_cart → checkout', 'checkout → purchase'] AS step,
    [page_view, add_to_cart, checkout] AS sample,
    [add_to_cart, checkout, purchase] AS converted"""
_STEP_COLUMNS = (
    Column("step", Kind.LABEL),
    Column("conversion", Kind.RATIO),
    Column("sample", Kind.COUNT),
)


def step_conversion() -> Sql:
    return Sql(_STEPS, _STEP_COLUMNS)


def worst_step() -> Sql:
    return Sql(
        f"""SELECT step, conversion, sample
FROM (
{_STEPS}
)
WHERE sample > 0
ORDER BY conversion ASC
LIMIT 1""",
        _STEP_COLUMNS,
    )


def overall_conversion() -> Sql:
    return Sql(
        f"""SELECT
    if(page_view > 0, purchase / page_view, NULL) AS overall_conversion,
    page_view AS sessions,
    purchase AS purchases
FROM ({_STAGE_COUNTS}
)""",
        (
            Column("overall_conversion", Kind.RATIO),
            Column("sessions", Kind.COUNT),
            Column("purchases", Kind.COUNT),
        ),
        funnel_columns=("sessions", "purchases"),
    )


_TIME_TO_CONVERT = f"""
    SELECT session_id, session_start, min(time_to_convert_ms) AS ttc_ms
    FROM funnel.stage_entries
    WHERE {SITE} AND stage = 4 AND $__timeFilter(reached_at)
    GROUP BY session_id, session_start"""


def time_to_convert() -> Sql:
    return Sql(
        f"""SELECT
    quantileExact(0.5)(ttc_ms) / 1000 AS p50_seconds,
    quantileExact(0.9)(ttc_ms) / 1000 AS p90_seconds,
    count() AS purchases
FROM ({_TIME_TO_CONVERT}
)
WHERE ttc_ms IS NOT NULL""",
        (
            Column("p50_seconds", Kind.SECONDS),
            Column("p90_seconds", Kind.SECONDS),
            Column("purchases", Kind.COUNT),
        ),
    )


def time_to_convert_buckets() -> Sql:
    return Sql(
        f"""SELECT
    multiIf(
        ttc_ms < 300000, '< 5 min',
        ttc_ms < 1800000, '5-30 min',
        ttc_ms < 7200000, '30 min-2 h',
        ttc_ms < 86400000, '2-24 h',
        '> 24 h'
    ) AS time_to_convert,
    count() AS purchases
FROM ({_TIME_TO_CONVERT}
)
WHERE ttc_ms IS NOT NULL
GROUP BY time_to_convert
ORDER BY min(ttc_ms)""",
        (Column("time_to_convert", Kind.LABEL), Column("purchases", Kind.COUNT)),
    )


def stage_entries_over_time() -> Sql:
    # The per-minute view already deduplicates; each session enters a stage in one minute only,
    # so summing minutes into wider intervals stays exact.
    return Sql(
        f"""SELECT
    $__timeInterval(minute) AS time,
    {STAGE_NAME} AS stage_name,
    sum(sessions) AS entries
FROM funnel.stage_counts_1m
WHERE {SITE} AND $__timeFilter(minute)
GROUP BY time, stage_name
ORDER BY time, stage_name""",
        (
            Column("time", Kind.TIME),
            Column("stage_name", Kind.LABEL),
            Column("entries", Kind.COUNT),
        ),
        time_series=True,
    )


def _cohorts(extra_select: str = "") -> str:
    """Per session: first page view, furthest stage, optional extra columns (any())."""
    return f"""
    SELECT
        session_id, session_start,{extra_select}
        minIf(reached_at, stage = 1) AS started_at,
        max(stage) AS furthest
    FROM funnel.stage_entries
    WHERE {SITE} AND reached_at >= $__fromTime
    GROUP BY session_id, session_start"""


def cohort_conversion_over_time() -> Sql:
    return Sql(
        f"""SELECT
    $__timeInterval(started_at) AS time,
    countIf(furthest >= 2) / count() AS to_add_to_cart,
    countIf(furthest >= 3) / count() AS to_checkout,
    countIf(furthest >= 4) / count() AS to_purchase
FROM ({_cohorts()}
)
WHERE $__timeFilter(started_at)
GROUP BY time
ORDER BY time""",
        (
            Column("time", Kind.TIME),
            Column("to_add_to_cart", Kind.RATIO),
            Column("to_checkout", Kind.RATIO),
            Column("to_purchase", Kind.RATIO),
        ),
        time_series=True,
    )


def cohort_conversion_by(column: str) -> Sql:
    return Sql(
        f"""SELECT
    $__timeInterval(started_at) AS time,
    segment,
    countIf(furthest >= 4) / count() AS conversion
FROM ({_cohorts(f" {segment(f'any({column})')} AS segment,")}
)
WHERE $__timeFilter(started_at)
GROUP BY time, segment
ORDER BY time, segment""",
        (
            Column("time", Kind.TIME),
            Column("segment", Kind.LABEL),
            Column("conversion", Kind.RATIO),
        ),
        time_series=True,
    )


def funnel_by(column: str) -> Sql:
    """Stage sessions and overall conversion per value of a first-touch dimension."""
    return Sql(
        f"""SELECT
    {segment(column)} AS segment,
    uniqExactIf((session_id, session_start), stage = 1) AS page_view,
    uniqExactIf((session_id, session_start), stage = 2) AS add_to_cart,
    uniqExactIf((session_id, session_start), stage = 3) AS checkout,
    uniqExactIf((session_id, session_start), stage = 4) AS purchase,
    if(page_view > 0, purchase / page_view, NULL) AS conversion
FROM funnel.stage_entries
WHERE {SITE} AND $__timeFilter(reached_at)
GROUP BY segment
ORDER BY page_view DESC, segment""",
        (
            Column("segment", Kind.LABEL),
            *(Column(stage, Kind.COUNT) for stage in STAGES),
            Column("conversion", Kind.RATIO),
        ),
        funnel_columns=STAGES,
    )


def dead_letters_by_reason() -> Sql:
    # Every site's: a message that is not even JSON has no site. One per source position.
    return Sql(
        """SELECT
    reason_code,
    uniqExact(source_topic, source_partition, source_offset) AS dead_letters,
    max(rejected_at) AS last_seen
FROM funnel.dead_letters
WHERE $__timeFilter(rejected_at)
GROUP BY reason_code
ORDER BY dead_letters DESC, reason_code""",
        (
            Column("reason_code", Kind.LABEL),
            Column("dead_letters", Kind.COUNT),
            Column("last_seen", Kind.TIME),
        ),
    )
