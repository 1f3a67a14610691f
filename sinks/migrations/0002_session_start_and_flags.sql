-- Issue 10. A session_id reused after its session expired is a new session: session_start (the
-- session's earliest event time) tells the two apart in every table and report query. Rows
-- written before this migration, and by sessions open across it, carry 0 (1970-01-01).
-- Raw events are flagged future-dated (clock ahead of what the worker observed) or capped (the
-- session was at its size limits). Every statement may run again after a partial failure.

ALTER TABLE {db}.events_raw
    ADD COLUMN IF NOT EXISTS future Bool AFTER late,
    ADD COLUMN IF NOT EXISTS capped Bool AFTER future;

ALTER TABLE {db}.stage_entries ADD COLUMN IF NOT EXISTS session_start DateTime64(3, 'UTC') AFTER session_id;

ALTER TABLE {db}.orders ADD COLUMN IF NOT EXISTS session_start DateTime64(3, 'UTC') AFTER session_id;

-- A sorting key can only grow at its end, by a column added in the same statement without a
-- default: existing rows get 0 and keep their order.
ALTER TABLE {db}.carts
    ADD COLUMN IF NOT EXISTS session_start DateTime64(3, 'UTC') AFTER session_id,
    MODIFY ORDER BY (site_id, session_id, cart_seq, session_start);

CREATE OR REPLACE VIEW {db}.stage_counts_1m AS
SELECT
    site_id,
    stage,
    toStartOfMinute(reached_at) AS minute,
    utm_source,
    utm_campaign,
    device,
    country,
    variant,
    uniqExact(session_id, session_start) AS sessions
FROM {db}.stage_entries
GROUP BY site_id, stage, minute, utm_source, utm_campaign, device, country, variant;

-- A refused (late) copy of an event must never replace the counted row under the same key when
-- parts merge: late_copy (= late, written by the sink) joins the key, as a new column must.
ALTER TABLE {db}.events_raw
    ADD COLUMN IF NOT EXISTS late_copy Bool AFTER capped,
    MODIFY ORDER BY (site_id, session_id, event_id, late_copy);
