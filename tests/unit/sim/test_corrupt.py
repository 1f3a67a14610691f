"""Broken input: each kind breaks the contract and leaves the source event alone."""

from __future__ import annotations

import random

import orjson
import pytest

from schemas.decode import DecodeLimits, Rejection, decode_event
from streams.sim.corrupt import CORRUPTION_KINDS, OVERSIZE_BYTES, corrupt

NOW_MS = 1_795_000_000_000
PAGE_VIEW = {
    "event_id": "e-1",
    "event_type": "page_view",
    "occurred_at": NOW_MS,
    "site_id": "shop-1",
    "session_id": "s-1",
    "device": "mobile",
    "country": "DE",
}


def test_the_source_event_is_valid() -> None:
    decoded = decode_event(orjson.dumps(PAGE_VIEW), now_ms=NOW_MS, limits=DecodeLimits())
    assert not isinstance(decoded, Rejection)


@pytest.mark.parametrize("kind", CORRUPTION_KINDS)
@pytest.mark.parametrize("seed", range(8))
def test_every_kind_is_rejected_and_the_source_untouched(kind: str, seed: int) -> None:
    source = orjson.loads(orjson.dumps(PAGE_VIEW))
    raw = corrupt(random.Random(seed), source, kind)
    assert source == PAGE_VIEW
    result = decode_event(raw, now_ms=NOW_MS, limits=DecodeLimits())
    assert isinstance(result, Rejection), raw[:200]


def test_oversize_is_just_over_one_mebibyte() -> None:
    raw = corrupt(random.Random(0), PAGE_VIEW, "oversize")
    assert OVERSIZE_BYTES < len(raw) < OVERSIZE_BYTES + 1024


def test_random_kind_and_unknown_kind() -> None:
    assert corrupt(random.Random(1), PAGE_VIEW) != orjson.dumps(PAGE_VIEW)
    with pytest.raises(ValueError, match="unknown corruption 'typo'"):
        corrupt(random.Random(1), PAGE_VIEW, "typo")
