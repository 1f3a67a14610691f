"""Funnel metrics: stage entries, orders, revenue, carts, watermarks; bounded label values."""

from __future__ import annotations

from collections import Counter as CountOf
from dataclasses import dataclass, field
from decimal import Decimal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.funnel.conversion import TIME_TO_CONVERT_BUCKETS_S, RollingConversion
from streams.funnel.facts import CartChanged, CartStatus, OrderPlaced, Stage, StageReached
from streams.funnel.partition import BatchResult

OTHER = "other"


@dataclass(slots=True)
class SiteLabels:
    """Which site ids get a metric label of their own; every other site shares "other".

    Site ids come from untrusted input, so labels are never first come, first served:
    - with an allow-list (FUNNEL_SITES), exactly the listed sites;
    - without one, a site earns its label once `min_sessions` of its sessions were seen (first
      page views, see `observe`), up to `limit` labelled sites. Candidates are counted in a
      Misra-Gries summary of `4 * limit` entries, so a flood of junk ids keeps memory bounded
      and cannot outvote a real shop's steady traffic.
    """

    limit: int
    min_sessions: int = 100
    allowed: frozenset[str] | None = None
    _labelled: set[str] = field(default_factory=set)
    _counts: dict[str, int] = field(default_factory=dict)

    def __call__(self, site_id: str) -> str:
        if self.allowed is not None:
            return site_id if site_id in self.allowed else OTHER
        return site_id if site_id in self._labelled else OTHER

    def observe(self, site_id: str) -> None:
        """One more session of the site."""
        if self.allowed is not None or site_id in self._labelled:
            return
        counts = self._counts
        if site_id in counts or len(counts) < 4 * self.limit:
            counts[site_id] = counts.get(site_id, 0) + 1
        else:  # Misra-Gries: a newcomer with no room lowers every candidate by one
            for other in list(counts):
                counts[other] -= 1
                if counts[other] == 0:
                    del counts[other]
            return
        if counts[site_id] >= self.min_sessions and len(self._labelled) < self.limit:
            self._labelled.add(site_id)
            del counts[site_id]


@dataclass(frozen=True, slots=True)
class FunnelMetrics:
    site: SiteLabels
    rolling: RollingConversion
    lateness_ms: int
    stage_entries: Counter
    orders: Counter
    revenue: Counter
    carts: Counter
    watermark: Gauge
    event_time_lag: Gauge
    open_sessions: Gauge
    state_writes: Counter
    rolling_stage_sessions: Gauge
    time_to_convert: Histogram
    events_future: Counter
    session_capped: Counter

    @classmethod
    def create(
        cls, registry: CollectorRegistry, *, sites: SiteLabels, lateness_ms: int
    ) -> FunnelMetrics:
        return cls(
            site=sites,
            rolling=RollingConversion(),
            lateness_ms=lateness_ms,
            stage_entries=Counter(
                "funnel_stage_entries_total", "Sessions reaching a funnel stage.",
                ["site", "stage"], registry=registry,
            ),
            orders=Counter(
                "funnel_orders_total", "Orders placed.", ["site"], registry=registry,
            ),
            revenue=Counter(
                "funnel_revenue_total", "Order value, in the order's currency.",
                ["site", "currency"], registry=registry,
            ),
            carts=Counter(
                "funnel_cart_transitions_total", "Cart state changes (open, abandoned, ...).",
                ["site", "status"], registry=registry,
            ),
            watermark=Gauge(
                "funnel_watermark_seconds", "Event-time watermark per partition (epoch s).",
                ["partition"], registry=registry,
            ),
            event_time_lag=Gauge(
                "funnel_event_time_lag_seconds", "Wall clock minus watermark, per partition.",
                ["partition"], registry=registry,
            ),
            open_sessions=Gauge(
                "funnel_open_sessions", "Sessions held in state, per partition.",
                ["partition"], registry=registry,
            ),
            state_writes=Counter(
                "funnel_state_writes_total", "Session state writes to the changelogged table.",
                registry=registry,
            ),
            rolling_stage_sessions=Gauge(
                "funnel_rolling_stage_sessions",
                "Sessions reaching a stage within the last window of event time (this worker).",
                ["site", "stage", "window"], registry=registry,
            ),
            time_to_convert=Histogram(
                "funnel_time_to_convert_seconds", "First page view to purchase, per session.",
                ["site"], buckets=TIME_TO_CONVERT_BUCKETS_S, registry=registry,
            ),
            events_future=Counter(
                "funnel_events_future_total",
                "Events whose clock ran ahead of what the worker observed by more than the skew "
                "allowed (accepted at their own time; they do not move the watermark past it).",
                ["site"], registry=registry,
            ),
            session_capped=Counter(
                "funnel_session_capped_total",
                "Events not added to their session because it was at its size limits.",
                ["site"], registry=registry,
            ),
        )  # fmt: skip

    def observe_batch(
        self, partition: int, result: BatchResult, open_sessions: int, now_ms: int
    ) -> None:
        # Summed per label first: one inc() per series and batch, not one per fact.
        entries: CountOf[tuple[str, Stage]] = CountOf()
        orders: CountOf[str] = CountOf()
        revenue: dict[tuple[str, str], Decimal] = {}
        carts: CountOf[tuple[str, CartStatus]] = CountOf()
        for fact in result.facts:
            if isinstance(fact, StageReached) and fact.stage is Stage.PAGE_VIEW:
                # Seen before it is labelled: the session that earns its site a label counts
                # under it (with one session to earn it, a site's first one went to "other").
                self.site.observe(fact.site_id)
            site = self.site(fact.site_id)
            match fact:
                case StageReached():
                    entries[site, fact.stage] += 1
                    # Keyed by label: junk site ids share one "other" series of buckets.
                    self.rolling.add(fact, site=site)
                    if fact.time_to_convert_ms is not None:
                        self.time_to_convert.labels(site).observe(fact.time_to_convert_ms / 1000)
                case OrderPlaced():
                    orders[site] += 1
                    key = (site, fact.currency or "")
                    revenue[key] = revenue.get(key, Decimal(0)) + fact.value
                case CartChanged():
                    carts[site, fact.status] += 1
        for (site, stage), n in entries.items():
            self.stage_entries.labels(site, stage.name.lower()).inc(n)
        for site, n in orders.items():
            self.orders.labels(site).inc(n)
        for (site, currency), value in revenue.items():
            self.revenue.labels(site, currency).inc(float(value))
        for (site, status), n in carts.items():
            self.carts.labels(site, status.name.lower()).inc(n)
        label = str(partition)
        if result.watermark_ms is not None:
            self.watermark.labels(label).set(result.watermark_ms / 1000)
            self.event_time_lag.labels(label).set((now_ms - result.watermark_ms) / 1000)
        self.open_sessions.labels(label).set(open_sessions)
        self.state_writes.inc(result.sessions_written)
        if result.watermark_ms is not None and result.facts:
            # Stages are final only up to watermark - lateness: the windows end there, so a
            # "15m" gauge really holds 15 minutes of entries.
            self._publish_rolling(result.watermark_ms - self.lateness_ms)

    def _publish_rolling(self, event_now_ms: int) -> None:
        """Gauges of the rolling windows, as of the event time up to which stages are final."""
        totals: dict[tuple[str, str, str], int] = {}
        for site in self.rolling.snapshot(event_now_ms):
            window = _window_label(site.span_ms)
            for stage, entries in zip(Stage, site.stage_entries, strict=True):
                key = (site.site_id, stage.name.lower(), window)
                totals[key] = totals.get(key, 0) + entries
        self.rolling_stage_sessions.clear()
        for (site_label, stage_label, window), entries in totals.items():
            self.rolling_stage_sessions.labels(site_label, stage_label, window).set(entries)

    def forget_partition(self, partition: int) -> None:
        for gauge in (self.watermark, self.event_time_lag, self.open_sessions):
            try:
                gauge.remove(str(partition))
            except KeyError:
                continue


def _window_label(span_ms: int) -> str:
    minutes = span_ms // 60_000
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
