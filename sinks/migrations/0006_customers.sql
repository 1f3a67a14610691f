-- One row per customer (site, user_id), kept up to date by a materialised view over orders, for
-- `funnel customers`. The state is the set of the customer's distinct order rows, so it stays
-- exact under at-least-once delivery: an order row inserted twice, before or after merges, is
-- one element; an order retried at another time is two elements of one order_id, and readers
-- keep the earliest (as the orders queries do). Holding every order's time, it answers any
-- as-of exactly, and like customer_first_orders it outlives the orders TTL.
CREATE TABLE IF NOT EXISTS {db}.customers
(
    site_id LowCardinality(String),
    user_id String,
    orders AggregateFunction(
        groupUniqArray,
        Tuple(String, DateTime64(3, 'UTC'), String, Decimal(38, 6))  -- order_id, at, currency, value
    )
)
ENGINE = AggregatingMergeTree
ORDER BY (site_id, user_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.customers_mv
TO {db}.customers AS
SELECT
    site_id,
    user_id,
    groupUniqArrayState((order_id, occurred_at, toString(currency), value)) AS orders
FROM {db}.orders
WHERE user_id != ''
GROUP BY site_id, user_id;

-- Orders written before this migration; a row written meanwhile and counted twice is still one
-- element of the set.
INSERT INTO {db}.customers
SELECT
    site_id,
    user_id,
    groupUniqArrayState((order_id, occurred_at, toString(currency), value))
FROM {db}.orders
WHERE user_id != ''
GROUP BY site_id, user_id
