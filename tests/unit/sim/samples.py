"""Simulated traffic for the simulator tests: a base config and the contract every event meets."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from schemas.event import Device
from streams.sim.generator import (
    SimulationConfig,
)

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BASE = SimulationConfig(start=START, seed=7, sessions=300)

# --- contract v1, restated here so the generator is checked independently of the decoder ---
REQUIRED = ("event_id", "event_type", "occurred_at", "site_id", "session_id")
OPTIONAL_TEXT = (
    "user_id",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "referrer",
    "variant",
    "page",
    "order_id",
    "cart_id",
)
KNOWN = {*REQUIRED, *OPTIONAL_TEXT, "device", "country", "items", "value", "currency"}
EVENT_TYPES = {"page_view", "add_to_cart", "remove_from_cart", "checkout", "purchase"}
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
MONEY = re.compile(r"\d+\.\d{2}")


def occurred_ms(event: dict[str, Any]) -> int:
    value = event["occurred_at"]
    if isinstance(value, int):
        return value
    return round(datetime.fromisoformat(value).timestamp() * 1000)


def assert_contract(event: dict[str, Any]) -> None:
    assert set(event) <= KNOWN, set(event) - KNOWN
    for name in REQUIRED[:2] + REQUIRED[3:]:
        assert isinstance(event[name], str)
        assert event[name]
    assert 1 <= len(event["event_id"]) <= 128
    assert event["event_type"] in EVENT_TYPES
    occurred = event["occurred_at"]
    if isinstance(occurred, str):
        assert RFC3339.fullmatch(occurred), occurred
    else:
        assert type(occurred) is int
    for name in OPTIONAL_TEXT:
        assert name not in event or (isinstance(event[name], str) and event[name])
    assert event.get("device", "desktop") in {d.value for d in Device}
    assert re.fullmatch(r"[A-Z]{2}", event.get("country", "DE"))
    if "value" in event:
        assert MONEY.fullmatch(event["value"])
        assert re.fullmatch(r"[A-Z]{3}", event["currency"])
    if event["event_type"] == "purchase":
        assert event["order_id"]
    if event["event_type"] in {"add_to_cart", "remove_from_cart", "checkout", "purchase"}:
        assert event["items"]
        assert event["cart_id"]
        total = Decimal("0")
        for line in event["items"]:
            assert set(line) == {"sku", "quantity", "price"}
            assert isinstance(line["sku"], str)
            assert line["sku"]
            assert type(line["quantity"]) is int
            assert line["quantity"] >= 1
            assert MONEY.fullmatch(line["price"])
            total += Decimal(line["price"]) * line["quantity"]
        assert Decimal(event["value"]) == total


def by_session(events: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        sessions[event["session_id"]].append(event)
    return sessions


# --- determinism ---
