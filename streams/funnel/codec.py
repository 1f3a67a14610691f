"""Session state <-> bytes, for the changelogged table that holds it.

Format: one orjson array whose first element is the format version, then positional fields
(arrays, not objects: no key names repeated in every stored session). Decimals are strings so no
precision is lost; remembered ids are 8-byte digests packed into one base64 string; trailing nulls
of a pending event are dropped. A reader refuses a version it does not know rather than guess:
to evolve the format, add version 2 and keep decoding 1.

Pending events keep only what finalisation reads (referrer, page and cart_id are not stored).
"""

from __future__ import annotations

import base64
import binascii
import struct
from decimal import Decimal
from typing import Any

import orjson

from schemas.event import EventType, Item
from streams.funnel.cart import Cart
from streams.funnel.facts import CartStatus, Dims, DimsValues, Stage
from streams.funnel.session import Pending, SessionState

FORMAT_VERSION = 2
# Version 1 had no session start and no size accounting; see _upgrade_v1.
_V1 = 1

# Stored codes: fixed forever, whatever order the engine sorts event types in.
_TYPE_CODE: dict[EventType, int] = {
    EventType.PAGE_VIEW: 0,
    EventType.ADD_TO_CART: 1,
    EventType.REMOVE_FROM_CART: 2,
    EventType.CHECKOUT: 3,
    EventType.PURCHASE: 4,
}
_TYPE_OF_CODE = {code: kind for kind, code in _TYPE_CODE.items()}


def encode_state(state: SessionState) -> bytes:
    cart = state.cart
    encoded = orjson.dumps(
        [
            FORMAT_VERSION,
            state.last_event_ms,
            state.final_bound_ms,
            _pack(state.seen),
            _pack(state.orders),
            state.stages,
            state.user_id,
            _dims(state.dims),
            None if cart is None else _cart(cart),
            # Once the first touch is known no pending event can be it: drop their dims.
            [_pending(p, keep_dims=state.dims is None) for p in state.pending],
            state.start_ms,
            state.events,
            state.item_lines,
            state.state_bytes,
        ]
    )
    # orjson's result keeps its ~4 KiB working buffer; a right-sized copy is what the table
    # holds for every open session (4.4 KB -> ~0.8 KB per session in the benchmark).
    return bytes(memoryview(encoded))


def decode_state(data: bytes) -> SessionState:
    row = orjson.loads(data)
    version = row[0] if isinstance(row, list) and row else None
    if version == _V1:
        return _upgrade_v1(_decode_common(row), len(data))
    if version != FORMAT_VERSION:
        raise ValueError(f"unknown session state format version {version!r}")
    state = _decode_common(row)
    start, state.events, state.item_lines, state.state_bytes = row[10:14]
    state.start_ms = None if start is None else int(start)
    return state


def _upgrade_v1(state: SessionState, encoded_size: int) -> SessionState:
    # Rows of a session open across the upgrade were written with start 0: keep it, so the
    # session's later rows land on the same keys.
    state.start_ms = 0
    state.events = len(state.seen)
    state.item_lines = sum(len(p.items) for p in state.pending)
    if state.cart is not None:
        state.item_lines += len(state.cart.items)
    state.state_bytes = encoded_size
    return state


def _decode_common(row: list[Any]) -> SessionState:
    last, bound, seen, orders, stages, user_id, dims, cart, pending = row[1:10]
    return SessionState(
        last_event_ms=int(last),
        seen=_unpack(seen),
        pending=[_to_pending(p) for p in pending],
        final_bound_ms=None if bound is None else int(bound),
        stages=[None if s is None else int(s) for s in stages],
        orders=_unpack(orders),
        user_id=user_id,
        dims=_to_dims(dims),
        cart=None if cart is None else _to_cart(cart),
    )


def _pack(ids: set[int]) -> str:
    if not ids:
        return ""  # most sessions have no orders
    return binascii.b2a_base64(struct.pack(f">{len(ids)}Q", *sorted(ids)), newline=False).decode()


def _unpack(text: str) -> set[int]:
    raw = base64.b64decode(text)
    return set(struct.unpack(f">{len(raw) // 8}Q", raw))


def _dims(d: Dims | None) -> list[str | None] | None:
    if d is None:
        return None
    return [d.utm_source, d.utm_medium, d.utm_campaign, d.device, d.country, d.variant]


def _to_dims(row: list[Any] | None) -> Dims | None:
    return None if row is None else Dims(*row)


def _to_dims_values(row: list[Any]) -> DimsValues:
    utm_source, utm_medium, utm_campaign, device, country, variant = row
    return (utm_source, utm_medium, utm_campaign, device, country, variant)


def _items(items: tuple[Item, ...]) -> list[list[Any]]:
    return [[i.sku, i.quantity, str(i.price)] for i in items]


def _to_items(rows: list[list[Any]]) -> tuple[Item, ...]:
    return tuple(Item(sku, int(qty), Decimal(price)) for sku, qty, price in rows)


def _cart(c: Cart) -> list[Any]:
    return [
        c.seq,
        int(c.status),
        c.opened_at_ms,
        c.last_activity_ms,
        int(c.last_stage),
        c.closed_at_ms,
        c.recovered_at_ms,
        c.currency,
        str(c.loose_value),
        [[sku, qty, str(price)] for sku, (qty, price) in c.items.items()],
    ]


def _to_cart(row: list[Any]) -> Cart:
    seq, status, opened, last, stage, closed, recovered, currency, loose, items = row
    return Cart(
        seq=int(seq),
        status=CartStatus(status),
        opened_at_ms=int(opened),
        last_activity_ms=int(last),
        last_stage=Stage(stage),
        closed_at_ms=closed,
        recovered_at_ms=recovered,
        currency=currency,
        loose_value=Decimal(loose),
        items={sku: (int(qty), Decimal(price)) for sku, qty, price in items},
    )


def _pending(p: Pending, *, keep_dims: bool) -> list[Any]:
    row = [
        p.event_id,
        p.occurred_at_ms,
        _TYPE_CODE[p.event_type],
        p.user_id,
        p.dims if keep_dims else None,  # orjson writes the tuple as the same array
        _items(p.items) if p.items else None,
        None if p.value is None else str(p.value),
        p.currency,
        p.order_id,
    ]
    end = len(row)
    while row[end - 1] is None:
        end -= 1
    return row[:end]


def _to_pending(row: list[Any]) -> Pending:
    event_id, t, code, user_id, dims, items, value, currency, order_id = row + [None] * (
        9 - len(row)
    )
    return Pending(
        occurred_at_ms=int(t),
        event_type=_TYPE_OF_CODE[code],
        event_id=event_id,
        user_id=user_id,
        dims=None if dims is None else _to_dims_values(dims),
        items=() if items is None else _to_items(items),
        value=None if value is None else Decimal(value),
        currency=currency,
        order_id=order_id,
    )
