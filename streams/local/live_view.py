"""The demo's live terminal view: scrape a worker's /metrics, render two scrapes as text."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

STAGES = ("page_view", "add_to_cart", "checkout", "purchase")
Samples = Mapping[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(port: int) -> Samples:
    """The worker's metrics on this machine; empty while it is not serving yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return parse_metrics(response.read().decode())
    except OSError:
        return {}


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


@dataclass(frozen=True, slots=True)
class Progress:
    elapsed_s: float
    duration_s: float
    sent: int
    incident: str | None


def render(now: Samples, before: Samples, interval_s: float, progress: Progress) -> list[str]:
    """Lines for one refresh: throughput, stage counts and conversion, carts, dead letters."""
    consumed = total(now, "funnel_events_consumed_total")
    rate = (consumed - total(before, "funnel_events_consumed_total")) / max(interval_s, 1e-9)
    width = 30
    done = min(1.0, progress.elapsed_s / progress.duration_s) if progress.duration_s else 0.0
    lines = [
        f"[{'#' * int(done * width):<{width}}] {progress.elapsed_s:5.0f}/{progress.duration_s:.0f}s"
        f"  sent {progress.sent:,}  consumed {consumed:,.0f}  {rate:,.0f} ev/s",
    ]
    if progress.incident:
        lines.append(f"incident scheduled: {progress.incident}")
    lines.append("")
    lines.append(f"{'stage':<13}{'sessions':>10}{'step conv':>11}{'last 15m':>10}{'15m conv':>10}")
    previous = previous_rolling = 0.0
    for stage in STAGES:
        entries = total(now, "funnel_stage_entries_total", stage=stage)
        rolling = total(now, "funnel_rolling_stage_sessions", stage=stage, window="15m")
        step = f"{entries / previous:.1%}" if previous else ""
        rolling_step = f"{rolling / previous_rolling:.1%}" if previous_rolling else ""
        lines.append(f"{stage:<13}{entries:>10,.0f}{step:>11}{rolling:>10,.0f}{rolling_step:>10}")
        previous, previous_rolling = entries, rolling
    opened = total(now, "funnel_cart_transitions_total", status="open")
    abandoned = total(now, "funnel_cart_transitions_total", status="abandoned")
    recovered = total(now, "funnel_cart_transitions_total", status="recovered")
    abandonment = f" ({abandoned / opened:.0%} of opened)" if opened else ""
    lines += [
        "",
        f"carts opened {opened:,.0f}  abandoned {abandoned:,.0f}{abandonment}  "
        f"recovered {recovered:,.0f}",
        f"orders {total(now, 'funnel_orders_total'):,.0f}  "
        f"dead-lettered {total(now, 'funnel_dead_lettered_total'):,.0f}  "
        f"duplicates {total(now, 'funnel_events_consumed_total', outcome='duplicate'):,.0f}  "
        f"late {total(now, 'funnel_events_consumed_total', outcome='late'):,.0f}",
    ]
    return lines
