"""Metric labels from untrusted site ids: earned by volume or allow-listed, in bounded memory."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.funnel.facts import Dims, Stage, StageReached
from streams.funnel.partition import BatchResult
from streams.worker.funnel_metrics import FunnelMetrics, SiteLabels

NOW_MS = 1_790_000_000_000


def test_site_labels_are_earned_by_volume_not_taken_first_come() -> None:
    labels = SiteLabels(limit=2, min_sessions=3)
    for n in range(5_000):  # junk site ids arrive first, one session each
        labels.observe(f"junk-{n}")
    for _ in range(3):
        labels.observe("shop")
    assert labels("shop") == "shop"
    assert {labels(f"junk-{n}") for n in range(5_000)} == {"other"}
    assert len(labels._counts) <= 4 * labels.limit  # bounded memory whatever the junk
    for _ in range(3):
        labels.observe("shop-2")
        labels.observe("shop-3")
    assert [labels("shop-2"), labels("shop-3")] == ["shop-2", "other"]  # at most `limit`


def test_an_allow_list_decides_site_labels() -> None:
    labels = SiteLabels(limit=50, allowed=frozenset({"shop"}))
    for _ in range(1_000):
        labels.observe("junk")
    assert (labels("shop"), labels("junk")) == ("shop", "other")


def test_rolling_conversion_state_is_bounded_by_the_labels() -> None:
    metrics = FunnelMetrics.create(CollectorRegistry(), sites=SiteLabels(2), lateness_ms=0)
    facts = tuple(
        StageReached(f"junk-{n}", "s", 0, None, Dims(), Stage.PAGE_VIEW, NOW_MS)
        for n in range(50_000)
    )
    metrics.observe_batch(0, BatchResult((), facts, NOW_MS + 1, 0, 0), 0, NOW_MS)
    assert [s.site_id for s in metrics.rolling.snapshot(NOW_MS + 1)] == ["other", "other"]


def test_the_session_that_earns_its_site_a_label_counts_under_it() -> None:
    registry = CollectorRegistry()
    labels = SiteLabels(10, min_sessions=1)
    metrics = FunnelMetrics.create(registry, sites=labels, lateness_ms=0)
    first = StageReached("shop", "s1", 0, None, Dims(), Stage.PAGE_VIEW, NOW_MS)
    metrics.observe_batch(0, BatchResult((), (first,), NOW_MS + 1, 0, 0), 0, NOW_MS)
    entries = {"site": "shop", "stage": "page_view"}
    assert registry.get_sample_value("funnel_stage_entries_total", entries) == 1
    other = {"site": "other", "stage": "page_view"}
    assert registry.get_sample_value("funnel_stage_entries_total", other) is None
