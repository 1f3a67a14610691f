"""The shop the marketing and customers tests share: 45 days of simulated sessions.

40 users and guests, campaigns spelled as storefronts send them, two currencies, purchases
delivered twice and orders retried later from another session with a new event id; one site in
ten is another shop. `event_json` is an event as a storefront sends it to the events topic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from schemas.event import Event, EventType
from tests.integration.marketing_reference import ms

BASE = datetime(2026, 3, 2, tzinfo=UTC)
SITE = "shop-m"
DAYS = 45
# Spelled as storefronts send them: case and spaces differ, normalisation joins them.
CHANNELS = [
    ("Google", "BF"), (" google ", "spring"), ("facebook", "bf"), ("", ""), ("newsletter", ""),
    ("Facebook\t", ""), ("google", ""),
]  # fmt: skip
USERS = [f"u{i}" for i in range(40)]


def simulated_events(seed: int = 7) -> list[Event]:
    rng = random.Random(seed)
    events: list[Event] = []
    for n in range(700):
        site = SITE if n % 10 else "shop-other"
        sid = f"s{n}"
        at = ms(BASE) + rng.randrange(DAYS * 86_400_000)
        user = rng.choice(USERS) if rng.random() < 0.75 else None
        source, campaign = rng.choice(CHANNELS)
        common: dict[str, Any] = {
            "site_id": site, "session_id": sid, "user_id": user,
            "utm_source": source or None, "utm_campaign": campaign or None,
        }  # fmt: skip
        events.append(Event(f"{sid}-pv", EventType.PAGE_VIEW, at, **common))
        if rng.random() < 0.4:
            at += rng.randrange(1_000, 900_000)
            events.append(Event(f"{sid}-co", EventType.CHECKOUT, at, **common))
            at += rng.randrange(1_000, 900_000)
            value = Decimal(rng.randrange(500, 40_000)) / 100
            currency = "EUR" if rng.random() < 0.7 else "USD"
            purchase = Event(
                f"{sid}-buy", EventType.PURCHASE, at, **common,
                value=value, currency=currency, order_id=f"o{n}",
            )  # fmt: skip
            events.append(purchase)
            if rng.random() < 0.2:  # the same event delivered twice
                events.append(purchase)
            if rng.random() < 0.1:  # the order retried later from another session, new event id
                retry = f"{sid}-retry"
                later = at + rng.randrange(60_000, 3_600_000)
                events.append(Event(f"{retry}-pv", EventType.PAGE_VIEW, later - 500,
                                    **common | {"session_id": retry}))  # fmt: skip
                events.append(Event(f"{retry}-buy", EventType.PURCHASE, later,
                                    **common | {"session_id": retry}, value=value,
                                    currency=currency, order_id=f"o{n}"))  # fmt: skip
    return events


def event_json(e: Event) -> bytes:
    doc: dict[str, Any] = {
        "event_id": e.event_id, "event_type": e.event_type.value,
        "occurred_at": e.occurred_at_ms, "site_id": e.site_id, "session_id": e.session_id,
    }  # fmt: skip
    for name in ("user_id", "utm_source", "utm_campaign", "currency", "order_id"):
        if getattr(e, name) is not None:
            doc[name] = getattr(e, name)
    if e.value is not None:
        doc["value"] = str(e.value)
    return orjson.dumps(doc)
