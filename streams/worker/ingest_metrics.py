"""Prometheus metrics as one bundle against an injected registry (never the global one)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class Metrics:
    events_consumed: Counter
    events_invalid: Counter
    dead_lettered: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    processing_delay: Histogram
    up: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> Metrics:
        return cls(
            events_consumed=Counter(
                "funnel_events_consumed_total",
                "Messages consumed, by event type and outcome. An event read outside its "
                "session's partition counts as repartitioned there, then once more with its "
                "outcome where the repartition topic delivers it.",
                ["event_type", "outcome"],
                registry=registry,
            ),
            events_invalid=Counter(
                "funnel_events_invalid_total",
                "Messages rejected by validation, by reason code.",
                ["reason"],
                registry=registry,
            ),
            dead_lettered=Counter(
                "funnel_dead_lettered_total",
                "Messages written to the dead-letter topic.",
                registry=registry,
            ),
            batch_size=Histogram(
                "funnel_batch_events",
                "Events per processing batch.",
                buckets=(1, 10, 100, 500, 1_000, 2_000, 5_000, 10_000, 50_000),
                registry=registry,
            ),
            batch_seconds=Histogram(
                "funnel_batch_processing_seconds",
                (
                    "Wall time to process one batch; its sink flush and deliveries overlap "
                    "the next batch."
                ),
                buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                registry=registry,
            ),
            processing_delay=Histogram(
                "funnel_processing_delay_seconds",
                "Kafka timestamp of a batch's oldest message to the batch being processed.",
                buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900),
                registry=registry,
            ),
            up=Gauge(
                "funnel_up",
                "1 while the ingest agent is consuming; 0 before it started and once it failed "
                "(the process then exits non-zero).",
                registry=registry,
            ),
        )
