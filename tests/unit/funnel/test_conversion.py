"""Rolling conversion ratios, worst step and time-to-convert buckets."""

import pytest

from streams.funnel.conversion import (
    TIME_TO_CONVERT_BUCKETS_S,
    RollingConversion,
    StepConversion,
    step_conversions,
    worst_step,
)
from streams.funnel.facts import Dims, Stage, StageReached

M = 60_000
NOW = 1_700_000_040_000 + 60 * M


def entry(site: str, stage: Stage, at: int) -> StageReached:
    return StageReached(site, "x", 0, None, Dims(), stage, at)


def test_step_ratios_with_sample_sizes() -> None:
    steps = step_conversions([100, 40, 10, 0])
    assert steps == (
        StepConversion(Stage.PAGE_VIEW, Stage.ADD_TO_CART, 0.4, 100),
        StepConversion(Stage.ADD_TO_CART, Stage.CHECKOUT, 0.25, 40),
        StepConversion(Stage.CHECKOUT, Stage.PURCHASE, 0.0, 10),
    )
    assert step_conversions([0, 0, 0, 0])[0].ratio is None


def test_worst_step_is_the_largest_relative_drop_with_enough_sessions() -> None:
    assert worst_step([100, 40, 10, 0], min_sessions=5) == StepConversion(
        Stage.CHECKOUT, Stage.PURCHASE, 0.0, 10
    )
    # CHECKOUT has too few entries to judge its step; the next worst is ADD -> CHECKOUT.
    assert worst_step([100, 40, 10, 0], min_sessions=11) == StepConversion(
        Stage.ADD_TO_CART, Stage.CHECKOUT, 0.25, 40
    )
    assert worst_step([3, 1, 0, 0], min_sessions=5) is None


def test_worst_step_ties_go_to_the_earliest_step() -> None:
    step = worst_step([100, 50, 25, 5], min_sessions=1)
    assert step is not None
    assert step.from_stage is Stage.CHECKOUT
    step = worst_step([100, 50, 25, 13], min_sessions=1)
    assert step is not None
    assert step.from_stage is Stage.PAGE_VIEW


def test_rolling_windows_per_site_and_span() -> None:
    rolling = RollingConversion()
    for i in range(10):
        rolling.add(entry("s1", Stage.PAGE_VIEW, NOW - 50 * M + i))  # in 1 h only
    for i in range(4):
        rolling.add(entry("s1", Stage.PAGE_VIEW, NOW - 5 * M + i))
    rolling.add(entry("s1", Stage.ADD_TO_CART, NOW - M))
    rolling.add(entry("s1", Stage.ADD_TO_CART, NOW))  # not before now: not counted yet
    rolling.add(entry("s2", Stage.PAGE_VIEW, NOW - M))
    got = {(s.site_id, s.span_ms): s for s in rolling.snapshot(NOW)}
    assert got["s1", 15 * M].stage_entries == (4, 1, 0, 0)
    assert got["s1", 15 * M].steps[0] == StepConversion(Stage.PAGE_VIEW, Stage.ADD_TO_CART, 0.25, 4)
    assert got["s1", 60 * M].stage_entries == (14, 1, 0, 0)
    assert got["s2", 60 * M].stage_entries == (1, 0, 0, 0)


def test_rolling_forgets_old_buckets_and_sites() -> None:
    rolling = RollingConversion()
    rolling.add(entry("s1", Stage.PAGE_VIEW, NOW))
    assert len(rolling.snapshot(NOW + M)) == 2
    assert rolling.snapshot(NOW + 2 * 60 * M) == []


def test_rolling_refuses_spans_shorter_than_a_bucket() -> None:
    with pytest.raises(ValueError, match="span"):
        RollingConversion(spans_ms=(30_000,), bucket_ms=60_000)


def test_buckets_are_sorted_seconds() -> None:
    assert list(TIME_TO_CONVERT_BUCKETS_S) == sorted(TIME_TO_CONVERT_BUCKETS_S)
    assert TIME_TO_CONVERT_BUCKETS_S[-1] == 86400.0
