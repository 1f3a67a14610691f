-- Ad spend (issue 13): one row per (site, UTC day, source, campaign, currency); a rewrite of a
-- row replaces it, latest updated_at wins (queries take argMax, so before merges too).
CREATE TABLE IF NOT EXISTS {db}.ad_spend
(
    site_id LowCardinality(String),
    day Date,
    utm_source LowCardinality(String),
    utm_campaign LowCardinality(String),
    currency LowCardinality(String),
    cost Decimal(38, 6),
    clicks UInt64,
    impressions UInt64,
    updated_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (site_id, day, utm_source, utm_campaign, currency);

-- Each customer's (user_id's) first order ever, kept beyond the orders TTL and read without
-- scanning all orders. min() is idempotent, so replayed order rows change nothing.
CREATE TABLE IF NOT EXISTS {db}.customer_first_orders
(
    site_id LowCardinality(String),
    user_id String,
    first_order_at SimpleAggregateFunction(min, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (site_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.customer_first_orders_mv
TO {db}.customer_first_orders AS
SELECT site_id, user_id, min(occurred_at) AS first_order_at
FROM {db}.orders
WHERE user_id != ''
GROUP BY site_id, user_id;

-- Orders written before this migration; one written meanwhile counted twice is still one min.
INSERT INTO {db}.customer_first_orders
SELECT site_id, user_id, min(occurred_at) FROM {db}.orders WHERE user_id != ''
GROUP BY site_id, user_id
