"""Incident specs: parsing, matching, combining."""

from __future__ import annotations

import pytest

from schemas.event import EventType
from streams.sim.incidents import Incident, parse_incident, stage_factor

MOBILE_DE = {"device": "mobile", "country": "DE", "site": "shop-1"}


def test_parse_the_documented_example() -> None:
    incident = parse_incident("checkout:mobile:-70%@10m")
    assert incident == Incident(
        EventType.CHECKOUT, incident.factor, 600.0, None, (("device", "mobile"),)
    )
    assert incident.factor == pytest.approx(0.3)


def test_parse_window_filters_and_increase() -> None:
    incident = parse_incident(" purchase : country=DE : site=shop-1 : +25% @ 90s-1.5h ")
    assert incident.stage is EventType.PURCHASE
    assert incident.factor == pytest.approx(1.25)
    assert (incident.start_s, incident.end_s) == (90.0, 5400.0)
    assert incident.filters == (("country", "DE"), ("site", "shop-1"))


def test_applies_only_to_matching_sessions_inside_the_window() -> None:
    incident = parse_incident("checkout:mobile:country=DE:-50%@10m-20m")
    assert incident.applies(EventType.CHECKOUT, 600.0, MOBILE_DE)
    assert not incident.applies(EventType.CHECKOUT, 599.9, MOBILE_DE)
    assert not incident.applies(EventType.CHECKOUT, 1200.0, MOBILE_DE)
    assert not incident.applies(EventType.PURCHASE, 700.0, MOBILE_DE)
    assert not incident.applies(EventType.CHECKOUT, 700.0, {**MOBILE_DE, "country": "FR"})
    assert not incident.applies(EventType.CHECKOUT, 700.0, {"device": "mobile"})


def test_stage_factor_multiplies_overlapping_incidents() -> None:
    incidents = (parse_incident("checkout:-50%@0m"), parse_incident("checkout:mobile:-50%@5m"))
    assert stage_factor(incidents, EventType.CHECKOUT, 400.0, MOBILE_DE) == pytest.approx(0.25)
    assert stage_factor(incidents, EventType.CHECKOUT, 100.0, MOBILE_DE) == pytest.approx(0.5)
    assert stage_factor(incidents, EventType.ADD_TO_CART, 400.0, MOBILE_DE) == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checkout:-70%", "missing '@T'"),
        ("-70%@10m", "expected STAGE"),
        ("wishlist:-70%@10m", "unknown stage 'wishlist'"),
        ("page_view:-70%@10m", "'page_view' cannot be adjusted"),
        ("checkout:70%@10m", "must look like -70% or \\+20%"),
        ("checkout:-170%@10m", "more than 100%"),
        ("checkout:phone:-70%@10m", "filter 'phone' must be dimension=value"),
        ("checkout:colour=red:-70%@10m", "unknown dimension 'colour'"),
        ("checkout:country=:-70%@10m", "empty value"),
        ("checkout:-70%@10", "time '10' must look like 10m"),
        ("checkout:-70%@10m-5m", "must be after start"),
    ],
)
def test_parse_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_incident(text)
