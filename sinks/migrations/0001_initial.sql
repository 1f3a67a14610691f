-- Every table is written idempotently: a replayed batch lands on the same sorting key and
-- collapses (ReplacingMergeTree); report queries deduplicate by key, so they are exact even
-- before background merges run.

CREATE TABLE IF NOT EXISTS {db}.events_raw
(
    site_id LowCardinality(String),
    session_id String,
    event_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    received_at DateTime64(3, 'UTC'),
    late Bool,
    user_id String,
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    referrer String,
    device LowCardinality(String),
    country LowCardinality(String),
    variant LowCardinality(String),
    page String,
    value Nullable(Decimal(38, 6)),
    currency LowCardinality(String),
    order_id String,
    cart_id String,
    source_partition UInt32,
    source_offset UInt64,
    raw String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(occurred_at)
ORDER BY (site_id, session_id, event_id)
TTL toDateTime(occurred_at) + INTERVAL {raw_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.stage_entries
(
    site_id LowCardinality(String),
    stage UInt8,
    reached_at DateTime64(3, 'UTC'),
    session_id String,
    user_id String,
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    device LowCardinality(String),
    country LowCardinality(String),
    variant LowCardinality(String),
    time_to_convert_ms Nullable(Int64)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(reached_at)
ORDER BY (site_id, stage, reached_at, session_id)
TTL toDateTime(reached_at) + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.orders
(
    site_id LowCardinality(String),
    order_id String,
    occurred_at DateTime64(3, 'UTC'),
    session_id String,
    user_id String,
    value Decimal(38, 6),
    currency LowCardinality(String),
    item_count UInt32,
    reached_checkout Bool,
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    device LowCardinality(String),
    country LowCardinality(String),
    variant LowCardinality(String)
)
ENGINE = ReplacingMergeTree
ORDER BY (site_id, order_id, occurred_at, session_id)
TTL toDateTime(occurred_at) + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.carts
(
    site_id LowCardinality(String),
    session_id String,
    cart_seq UInt32,
    version UInt8,
    status LowCardinality(String),
    opened_at DateTime64(3, 'UTC'),
    closed_at Nullable(DateTime64(3, 'UTC')),
    recovered_at Nullable(DateTime64(3, 'UTC')),
    value Decimal(38, 6),
    currency LowCardinality(String),
    items String,
    last_stage UInt8,
    user_id String,
    utm_source LowCardinality(String),
    utm_medium LowCardinality(String),
    utm_campaign LowCardinality(String),
    device LowCardinality(String),
    country LowCardinality(String),
    variant LowCardinality(String)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (site_id, session_id, cart_seq)
TTL toDateTime(opened_at) + INTERVAL {aggregate_ttl_days} DAY;

CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    source_topic LowCardinality(String),
    source_partition UInt32,
    source_offset UInt64,
    rejected_at DateTime64(3, 'UTC'),
    reason_code LowCardinality(String),
    reason String,
    message_key String,
    payload String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(rejected_at)
ORDER BY (source_topic, source_partition, source_offset)
TTL toDateTime(rejected_at) + INTERVAL {raw_ttl_days} DAY;

-- Per-minute stage counters with breakdowns; uniqExact makes replays and unmerged parts harmless.
CREATE VIEW IF NOT EXISTS {db}.stage_counts_1m AS
SELECT
    site_id,
    stage,
    toStartOfMinute(reached_at) AS minute,
    utm_source,
    utm_campaign,
    device,
    country,
    variant,
    uniqExact(session_id) AS sessions
FROM {db}.stage_entries
GROUP BY site_id, stage, minute, utm_source, utm_campaign, device, country, variant;
