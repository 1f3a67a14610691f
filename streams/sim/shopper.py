"""One simulated session: who the visitor is and what they do, as timed contract-v1 events.

The planner draws from the run's single RNG in a fixed order, which is what makes a seed
reproduce the same traffic.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

from schemas.event import EventType, Item
from streams.sim.incidents import stage_factor
from streams.sim.traffic import SimulationConfig

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Some storefronts stamp local time with its offset; the decoder must normalise them.
_LOCAL_OFFSETS = (timezone(timedelta(hours=1)), timezone(timedelta(hours=-5)))
_LOCAL_OFFSET_SHARE = 0.1
_MEAN_DWELL_MS = 30_000
# How many products a visitor adds to a new cart: 1 (60 %), 2 (25 %) or 3 (15 %).
_CART_LINES_CUM_WEIGHTS = (60, 85, 100)
_T = TypeVar("_T")
_CATEGORIES = ("shoes", "bags", "jackets", "shirts", "accessories", "sale")


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    price: Decimal


@dataclass(slots=True)
class _Cart:
    cart_id: str
    lines: dict[str, tuple[Product, int]] = field(default_factory=dict)

    def add(self, product: Product, quantity: int) -> None:
        _, held = self.lines.get(product.sku, (product, 0))
        self.lines[product.sku] = (product, held + quantity)

    def items(self) -> list[dict[str, Any]]:
        return [_line(product, quantity) for product, quantity in self.lines.values()]

    def total(self) -> Decimal:
        return sum((p.price * q for p, q in self.lines.values()), Decimal("0.00"))


def _line(product: Product, quantity: int) -> dict[str, Any]:
    return Item(product.sku, quantity, product.price).as_json()


@dataclass(slots=True)
class _Session:
    """Per-session state while its events are written."""

    common: dict[str, Any]
    currency: str
    chances: dict[EventType, float]
    """P(reaching the stage | reached the one before), incidents applied."""
    referrer: str | None
    start_ms: int
    events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


class SessionPlanner:
    """Turns a session start time into that session's events, ordered by occurred_at."""

    def __init__(self, config: SimulationConfig, rng: random.Random) -> None:
        self._config = config
        self._rng = rng
        self._catalog = tuple(
            Product(f"SKU-{n:05d}", _price(rng)) for n in range(1, config.catalog_size + 1)
        )
        self._channel_weights = list(itertools.accumulate(c.weight for c in config.channels))
        self._device_weights = list(itertools.accumulate(d.weight for d in config.devices))
        self._country_weights = list(itertools.accumulate(w for _, w in config.countries))
        self._start_ms = config.start_ms
        self._day_prefixes: dict[int, str] = {}

    def plan(self, start_ms: int) -> list[tuple[int, dict[str, Any]]]:
        session = self._new_session(start_ms)
        t = self._browse(session, start_ms)
        if not self._reaches(session, EventType.ADD_TO_CART):
            return session.events
        t, purchased = self._shop(session, t)
        if not purchased and self._rng.random() < self._config.readd_rate:
            # The visitor comes back long after the abandonment timeout with a new cart.
            low, high = self._config.readd_pause
            pause_ms = self._rng.randint(low // _MS, high // _MS)
            self._shop(session, t + pause_ms)
        return session.events

    def _new_session(self, start_ms: int) -> _Session:
        rng, config = self._rng, self._config
        channel = _weighted(rng, config.channels, self._channel_weights)
        device = _weighted(rng, config.devices, self._device_weights)
        country = _weighted(rng, config.countries, self._country_weights)[0]
        common: dict[str, Any] = {
            "site_id": _uniform(rng, config.sites),
            "session_id": f"s-{rng.getrandbits(64):016x}",
            "utm_source": channel.utm_source,
            "utm_medium": channel.utm_medium,
            "device": device.device.value,
            "country": country,
            "variant": _uniform(rng, config.variants),
        }
        if channel.utm_campaign is not None:
            common["utm_campaign"] = channel.utm_campaign
        if rng.random() < config.logged_in_share:
            # A small pool makes returning customers: one user_id across many sessions.
            common["user_id"] = f"u-{rng.randrange(config.customer_pool):06d}"
        chances = {
            EventType.ADD_TO_CART: channel.add_to_cart * device.add_to_cart,
            EventType.CHECKOUT: channel.checkout * device.checkout,
            EventType.PURCHASE: channel.purchase * device.purchase,
        }
        if config.incidents:
            attrs = {
                "site": common["site_id"],
                "device": common["device"],
                "country": country,
                "variant": common["variant"],
                "utm_source": channel.utm_source,
                "utm_medium": channel.utm_medium,
                "utm_campaign": channel.utm_campaign or "",
            }
            offset_s = (start_ms - self._start_ms) / 1000
            for stage, chance in chances.items():
                chances[stage] = chance * stage_factor(config.incidents, stage, offset_s, attrs)
        currency = "USD" if country in config.usd_countries else config.currency
        return _Session(common, currency, chances, channel.referrer, start_ms)

    def _reaches(self, session: _Session, stage: EventType) -> bool:
        # A chance over 1 (a "+P%" incident, generous multipliers) simply always happens.
        return self._rng.random() < session.chances[stage]

    def _browse(self, session: _Session, t: int) -> int:
        rng = self._rng
        extra_views = _geometric(rng, self._config.mean_page_views - 1)
        kind = rng.random()
        if kind < 1 / 3:
            landing = "/"
        elif kind < 2 / 3:
            landing = f"/c/{_uniform(rng, _CATEGORIES)}"
        else:
            landing = f"/p/{_uniform(rng, self._catalog).sku}"
        first = {"page": landing}
        if session.referrer is not None:
            first["referrer"] = session.referrer
        self._emit(session, t, EventType.PAGE_VIEW, first)
        for _ in range(extra_views):
            t += self._dwell()
            page = f"/p/{_uniform(rng, self._catalog).sku}"
            self._emit(session, t, EventType.PAGE_VIEW, {"page": page})
        return t

    def _shop(self, session: _Session, t: int) -> tuple[int, bool]:
        """Fill a new cart, then maybe check out and buy; returns (time, purchased)."""
        rng = self._rng
        cart = _Cart(f"c-{rng.getrandbits(48):012x}")
        for _ in range(_weighted(rng, (1, 2, 3), _CART_LINES_CUM_WEIGHTS)):
            product = _uniform(rng, self._catalog)
            quantity = 1 if rng.random() < 0.8 else rng.randint(2, 3)
            t += self._dwell()
            self._emit(session, t, EventType.PAGE_VIEW, {"page": f"/p/{product.sku}"})
            t += rng.randint(2_000, 10_000)
            cart.add(product, quantity)
            self._emit_money(session, t, EventType.ADD_TO_CART, cart.cart_id, [(product, quantity)])
        if len(cart.lines) > 1 and rng.random() < self._config.remove_rate:
            sku = rng.choice(sorted(cart.lines))
            t += rng.randint(5_000, 60_000)
            removed = cart.lines.pop(sku)
            self._emit_money(session, t, EventType.REMOVE_FROM_CART, cart.cart_id, [removed])
        if not self._reaches(session, EventType.CHECKOUT):
            return t, False
        t += rng.randint(20_000, 120_000)
        self._emit_cart(session, t, EventType.CHECKOUT, cart, {"page": "/checkout"})
        if not self._reaches(session, EventType.PURCHASE):
            return t, False
        t += rng.randint(30_000, 180_000)
        order = {"page": "/checkout/confirmation", "order_id": f"o-{rng.getrandbits(48):012x}"}
        self._emit_cart(session, t, EventType.PURCHASE, cart, order)
        return t, True

    def _emit_money(
        self,
        session: _Session,
        t: int,
        event_type: EventType,
        cart_id: str,
        lines: list[tuple[Product, int]],
    ) -> None:
        value = sum((p.price * q for p, q in lines), Decimal("0.00"))
        fields = {
            "cart_id": cart_id,
            "items": [_line(p, q) for p, q in lines],
            "value": str(value),
            "currency": session.currency,
        }
        self._emit(session, t, event_type, fields)

    def _emit_cart(
        self, session: _Session, t: int, event_type: EventType, cart: _Cart, extra: dict[str, Any]
    ) -> None:
        fields = {
            "cart_id": cart.cart_id,
            "items": cart.items(),
            "value": str(cart.total()),
            "currency": session.currency,
            **extra,
        }
        self._emit(session, t, event_type, fields)

    def _emit(
        self, session: _Session, t: int, event_type: EventType, fields: dict[str, Any]
    ) -> None:
        # `pace` < 1 compresses a session's timeline (demos); gaps are drawn at full length
        # so the same seed draws the same random numbers whatever the pace.
        t = session.start_ms + round((t - session.start_ms) * self._config.pace)
        event = {
            "event_id": _uuid4(self._rng),
            "event_type": event_type.value,
            "occurred_at": self._timestamp(t),
            **session.common,
            **fields,
        }
        session.events.append((t, event))

    def _timestamp(self, t: int) -> str | int:
        rng = self._rng
        if rng.random() < self._config.epoch_ms_share:
            return t
        if rng.random() < _LOCAL_OFFSET_SHARE:
            moment = _EPOCH + timedelta(milliseconds=t)
            return moment.astimezone(rng.choice(_LOCAL_OFFSETS)).isoformat(timespec="milliseconds")
        # Hand-formatted: datetime.isoformat costs as much as the rest of the event.
        day, ms = divmod(t, 86_400_000)
        prefix = self._day_prefixes.get(day)
        if prefix is None:
            prefix = (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
            self._day_prefixes[day] = prefix
        seconds, ms = divmod(ms, 1000)
        minutes, seconds = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{ms:03d}Z"

    def _dwell(self) -> int:
        return 1_000 + int(self._rng.expovariate(1 / _MEAN_DWELL_MS))


def _weighted(rng: random.Random, items: Sequence[_T], cum_weights: Sequence[float]) -> _T:
    """random.choices(items, cum_weights=...)[0] without its per-call list building."""
    return items[bisect.bisect(cum_weights, rng.random() * cum_weights[-1])]


def _uniform(rng: random.Random, items: Sequence[_T]) -> _T:
    """random.choice, minus the rejection sampling that makes it several times slower."""
    return items[int(rng.random() * len(items))]


def _uuid4(rng: random.Random) -> str:
    """A version-4 UUID string from the run's RNG (uuid.UUID is twice as slow)."""
    bits = rng.getrandbits(128) & ~(0xF000 << 64) | (0x4000 << 64)
    hexed = f"{bits & ~(0xC000 << 48) | (0x8000 << 48):032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}"


def _price(rng: random.Random) -> Decimal:
    """Shop-like prices: mostly 10 to 60, a long tail up to a few hundred, never below 1.99."""
    return max(Decimal("1.99"), Decimal(f"{rng.lognormvariate(3.3, 0.8):.2f}"))


def _geometric(rng: random.Random, mean: float) -> int:
    """A count >= 0 with the given mean (geometric distribution)."""
    if mean <= 0:
        return 0
    stop = 1 / (mean + 1)
    count = 0
    while rng.random() >= stop:
        count += 1
    return count
