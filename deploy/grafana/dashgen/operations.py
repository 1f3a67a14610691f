"""Operations: throughput, lag, dead letters and the sink, for whoever is on call."""

from __future__ import annotations

from deploy.grafana.dashgen import sql
from deploy.grafana.dashgen.model import Dashboard, Panel, PromQL, Row

_RATE = "[$__rate_interval]"


def _quantiles(histogram: str, by: str = "") -> tuple[PromQL, ...]:
    labels = f"{by}, le" if by else "le"
    return tuple(
        PromQL(
            f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket{_RATE})))",
            f"p{round(q * 100)}",
        )
        for q in (0.5, 0.95, 0.99)
    )


def _intake() -> Row:
    return Row(
        "Intake",
        (
            Panel(
                "Events consumed",
                "Messages per second by outcome: accepted, duplicate, late, invalid, "
                "revoked (taken before a rebalance, replayed by the new owner).",
                "timeseries",
                (
                    PromQL(
                        f"sum by (outcome) (rate(funnel_events_consumed_total{_RATE}))",
                        "{{outcome}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Invalid events by reason",
                "Rejected messages per second by reason code; each one is dead-lettered.",
                "timeseries",
                (
                    PromQL(
                        f"sum by (reason) (rate(funnel_events_invalid_total{_RATE}))",
                        "{{reason}}",
                    ),
                ),
                unit="reqps",
            ),
            Panel(
                "Dead-letter ratio",
                "Share of consumed messages sent to the dead-letter topic (5 min); the "
                "alert fires above 5 %.",
                "timeseries",
                (PromQL("job:funnel_dead_letter:ratio_rate5m", "{{job}}"),),
                ratio=True,
            ),
            Panel(
                "Dead letters by reason (ClickHouse)",
                "Dead letters in the range by reason code, with the last one seen.",
                "table",
                (sql.dead_letters_by_reason(),),
            ),
        ),
    )


def _lag_and_processing() -> Row:
    return Row(
        "Lag and processing",
        (
            Panel(
                "Event-time lag per partition",
                "Wall clock minus the partition's watermark; an idle partition sits "
                "near the lateness bound. The lag alert fires above 10 min and growing.",
                "timeseries",
                (PromQL("partition:funnel_event_time_lag:seconds", "{{partition}}"),),
                unit="s",
            ),
            Panel(
                "Processing delay",
                "Kafka timestamp to processed, per batch: how far the consumers run "
                "behind the topic.",
                "timeseries",
                _quantiles("funnel_processing_delay_seconds"),
                unit="s",
            ),
            Panel(
                "Batch processing time",
                "Wall time per batch, sink flush included.",
                "timeseries",
                _quantiles("funnel_batch_processing_seconds"),
                unit="s",
            ),
            Panel(
                "Batch size",
                "Events per processing batch.",
                "timeseries",
                _quantiles("funnel_batch_events"),
            ),
            Panel(
                "Open sessions per partition",
                "Sessions held in state; memory and changelog size follow it.",
                "timeseries",
                (PromQL("sum by (partition) (funnel_open_sessions)", "{{partition}}"),),
            ),
            Panel(
                "Repartitioned events",
                "Events read outside their session's partition (no key, or a key other than "
                "the session) and forwarded through the repartition topic, per second; "
                "correctly keyed producers keep this at zero.",
                "timeseries",
                (PromQL(f"sum by (key) (rate(funnel_repartitioned_total{_RATE}))", "key {{key}}"),),
                unit="ops",
            ),
            Panel(
                "Repartition topic lag",
                "Forwards and progress markers not yet read back, per partition.",
                "timeseries",
                (PromQL("sum by (partition) (funnel_repartition_lag_messages)", "{{partition}}"),),
            ),
            Panel(
                "State writes",
                "Session-state writes per second to the changelogged table.",
                "timeseries",
                (PromQL(f"sum(rate(funnel_state_writes_total{_RATE}))", "writes"),),
                unit="ops",
            ),
            Panel(
                "Workers up",
                "Workers Prometheus can scrape.",
                "stat",
                (PromQL('sum(up{job="funnel-worker"})', "up"),),
            ),
        ),
    )


def _sink_clickhouse() -> Row:
    return Row(
        "Sink (ClickHouse)",
        (
            Panel(
                "Rows written",
                "Rows per second written to each ClickHouse table.",
                "timeseries",
                (
                    PromQL(
                        f"sum by (table) (rate(funnel_sink_rows_written_total{_RATE}))",
                        "{{table}}",
                    ),
                ),
                unit="rowsps",
            ),
            Panel(
                "Flush time",
                "Time to flush a batch's rows, retries included.",
                "timeseries",
                _quantiles("funnel_sink_flush_seconds"),
                unit="s",
            ),
            Panel(
                "Sink errors and retries",
                "Failed writes per second by retriable, and retries.",
                "timeseries",
                (
                    PromQL(
                        f"sum by (retriable) (rate(funnel_sink_errors_total{_RATE}))",
                        "errors (retriable={{retriable}})",
                    ),
                    PromQL(f"sum(rate(funnel_sink_retries_total{_RATE}))", "retries"),
                ),
            ),
        ),
    )


def _business_live() -> Row:
    return Row(
        "Business, live",
        (
            Panel(
                "Stage entries",
                "Sessions reaching each stage per second, by site (processing time).",
                "timeseries",
                (
                    PromQL(
                        f"sum by (site, stage) (rate(funnel_stage_entries_total{_RATE}))",
                        "{{site}} {{stage}}",
                    ),
                ),
            ),
            Panel(
                "Step conversion, 15 min",
                "Rolling step conversion per site over the last 15 min of event time.",
                "timeseries",
                (
                    PromQL(
                        'site_step_window:funnel_step_conversion:ratio{window="15m"}',
                        "{{site}} {{step}}",
                    ),
                ),
                ratio=True,
            ),
            Panel(
                "Time to convert, median",
                "First page view to purchase, median per site over the interval.",
                "timeseries",
                (
                    PromQL(
                        "histogram_quantile(0.5, sum by (site, le) "
                        f"(rate(funnel_time_to_convert_seconds_bucket{_RATE})))",
                        "{{site}}",
                    ),
                ),
                unit="s",
            ),
            Panel(
                "Cart transitions",
                "Carts opened, abandoned, converted and recovered per second.",
                "timeseries",
                (
                    PromQL(
                        f"sum by (status) (rate(funnel_cart_transitions_total{_RATE}))",
                        "{{status}}",
                    ),
                ),
            ),
            Panel(
                "Revenue",
                "Order value per second, per currency (processing time).",
                "timeseries",
                (
                    PromQL(
                        f"sum by (currency) (rate(funnel_revenue_total{_RATE}))",
                        "{{currency}}",
                    ),
                ),
            ),
        ),
    )


def dashboard() -> Dashboard:
    return Dashboard(
        uid="funnel-operations",
        title="Funnel operations",
        description="Is the pipeline keeping up, and is anything being dropped? (Prometheus)",
        rows=(
            _intake(),
            _lag_and_processing(),
            _sink_clickhouse(),
            _business_live(),
        ),
    )
