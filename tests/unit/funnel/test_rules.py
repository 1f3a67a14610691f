import pytest

from streams.funnel.rules import HOUR_MS, MINUTE_MS, FunnelRules


def test_defaults_are_the_product_numbers() -> None:
    rules = FunnelRules()
    assert rules.conversion_window_ms == 24 * HOUR_MS
    assert rules.lateness_ms == 5 * MINUTE_MS
    assert rules.abandonment_ms == 30 * MINUTE_MS
    assert rules.retention_ms == 25 * HOUR_MS


def test_retention_covers_the_longer_of_window_and_abandonment() -> None:
    rules = FunnelRules(conversion_window_ms=10, abandonment_ms=50, expiry_margin_ms=5)
    assert rules.retention_ms == 55


@pytest.mark.parametrize(
    "field", ["conversion_window_ms", "abandonment_ms", "idle_after_ms", "lateness_ms"]
)
def test_negative_durations_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FunnelRules(**{field: -1})


@pytest.mark.parametrize("field", ["conversion_window_ms", "abandonment_ms", "idle_after_ms"])
def test_zero_is_refused_where_it_makes_no_sense(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FunnelRules(**{field: 0})


def test_zero_lateness_is_allowed() -> None:
    assert FunnelRules(lateness_ms=0).lateness_ms == 0


@pytest.mark.parametrize("value", [1.5, True, "60000"])
def test_non_int_durations_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="lateness_ms"):
        FunnelRules(lateness_ms=value)  # type: ignore[arg-type]
