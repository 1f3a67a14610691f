"""Simulated incidents: "from minute 10, mobile checkouts drop by 70 %".

Syntax (whitespace around parts is ignored)::

    STAGE[:FILTER]...:±P%@T[-U]

STAGE   the funnel step whose probability changes: ``add_to_cart``, ``checkout`` or
        ``purchase``. The probability of *reaching* STAGE, given the session reached the
        previous step, is multiplied by ``1 - P/100`` (``-P%``) or ``1 + P/100`` (``+P%``),
        capped to [0, 1]. ``page_view`` is the entry step and cannot be changed.
FILTER  ``dimension=value``; every filter must match the session. Dimensions: ``site``,
        ``device``, ``country``, ``variant``, ``utm_source``, ``utm_medium``,
        ``utm_campaign``. A bare device name (``mobile``) is short for ``device=mobile``.
T, U    event time since the simulation start, a number with unit ``s``, ``m`` or ``h``
        (``10m``, ``90s``, ``1.5h``). Sessions that *start* at or after T (and before U,
        if given) are affected.

Examples: ``checkout:mobile:-70%@10m``, ``purchase:country=DE:-100%@5m-20m``,
``add_to_cart:utm_source=newsletter:+25%@0m``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from schemas.event import Device, EventType

ADJUSTABLE_STAGES = (EventType.ADD_TO_CART, EventType.CHECKOUT, EventType.PURCHASE)
DIMENSIONS = (
    "site",
    "device",
    "country",
    "variant",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)

_CHANGE = re.compile(r"(?P<sign>[+-])(?P<pct>\d+(?:\.\d+)?)%")
_TIME = re.compile(r"(?P<amount>\d+(?:\.\d+)?)(?P<unit>[smh])")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True, slots=True)
class Incident:
    stage: EventType
    factor: float
    start_s: float
    end_s: float | None = None
    filters: tuple[tuple[str, str], ...] = ()

    def applies(self, stage: EventType, start_offset_s: float, attrs: Mapping[str, str]) -> bool:
        """Whether a session with these attributes, started at this offset, is affected."""
        if stage is not self.stage or start_offset_s < self.start_s:
            return False
        if self.end_s is not None and start_offset_s >= self.end_s:
            return False
        return all(attrs.get(dimension) == value for dimension, value in self.filters)


def parse_incident(text: str) -> Incident:
    """Parse ``STAGE[:FILTER]...:±P%@T[-U]`` (see the module docstring)."""
    spec = text.strip()
    head, at, when = spec.rpartition("@")
    if not at:
        raise ValueError(f"incident {text!r}: missing '@T' start time, e.g. 'checkout:-50%@10m'")
    parts = [part.strip() for part in head.split(":")]
    if len(parts) < 2:
        raise ValueError(f"incident {text!r}: expected STAGE[:FILTER]...:±P%@T")
    stage = _parse_stage(text, parts[0])
    factor = _parse_change(text, parts[-1])
    filters = tuple(_parse_filter(text, part) for part in parts[1:-1])
    start_s, end_s = _parse_window(text, when.strip())
    return Incident(stage=stage, factor=factor, start_s=start_s, end_s=end_s, filters=filters)


def _parse_stage(text: str, raw: str) -> EventType:
    names = ", ".join(stage.value for stage in ADJUSTABLE_STAGES)
    try:
        stage = EventType(raw)
    except ValueError:
        raise ValueError(f"incident {text!r}: unknown stage {raw!r}; use one of {names}") from None
    if stage not in ADJUSTABLE_STAGES:
        raise ValueError(f"incident {text!r}: stage {raw!r} cannot be adjusted; use one of {names}")
    return stage


def _parse_change(text: str, raw: str) -> float:
    match = _CHANGE.fullmatch(raw)
    if match is None:
        raise ValueError(f"incident {text!r}: change {raw!r} must look like -70% or +20%")
    percent = float(match["pct"])
    if match["sign"] == "-":
        if percent > 100:
            raise ValueError(f"incident {text!r}: cannot reduce by more than 100%")
        return 1 - percent / 100
    return 1 + percent / 100


def _parse_filter(text: str, raw: str) -> tuple[str, str]:
    dimension, equals, value = raw.partition("=")
    if not equals:
        if raw in {device.value for device in Device}:
            return ("device", raw)
        raise ValueError(
            f"incident {text!r}: filter {raw!r} must be dimension=value "
            f"(dimensions: {', '.join(DIMENSIONS)}) or a device name"
        )
    dimension, value = dimension.strip(), value.strip()
    if dimension not in DIMENSIONS:
        raise ValueError(
            f"incident {text!r}: unknown dimension {dimension!r}; "
            f"use one of {', '.join(DIMENSIONS)}"
        )
    if not value:
        raise ValueError(f"incident {text!r}: filter {raw!r} has an empty value")
    return (dimension, value)


def _parse_window(text: str, raw: str) -> tuple[float, float | None]:
    start_raw, dash, end_raw = raw.partition("-")
    start_s = _parse_offset(text, start_raw.strip())
    if not dash:
        return start_s, None
    end_s = _parse_offset(text, end_raw.strip())
    if end_s <= start_s:
        raise ValueError(f"incident {text!r}: end {end_raw!r} must be after start {start_raw!r}")
    return start_s, end_s


def _parse_offset(text: str, raw: str) -> float:
    match = _TIME.fullmatch(raw)
    if match is None:
        raise ValueError(f"incident {text!r}: time {raw!r} must look like 10m, 90s or 1.5h")
    return float(match["amount"]) * _UNIT_SECONDS[match["unit"]]


def stage_factor(
    incidents: tuple[Incident, ...],
    stage: EventType,
    start_offset_s: float,
    attrs: Mapping[str, str],
) -> float:
    """Combined multiplier of every incident affecting this stage for this session."""
    factor = 1.0
    for incident in incidents:
        if incident.applies(stage, start_offset_s, attrs):
            factor *= incident.factor
    return factor
