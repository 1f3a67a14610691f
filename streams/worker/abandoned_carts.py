"""The record remarketing tools read from the abandoned-carts topic."""

from __future__ import annotations

import orjson

from streams.funnel.facts import CartChanged


def abandoned_cart_message(fact: CartChanged) -> bytes:
    return orjson.dumps(
        {
            "site_id": fact.site_id,
            "session_id": fact.session_id,
            "user_id": fact.user_id,
            "cart_seq": fact.cart_seq,
            "opened_at": fact.opened_at_ms,
            "abandoned_at": fact.closed_at_ms,
            "value": str(fact.value),
            "currency": fact.currency,
            "items": [item.as_json() for item in fact.items],
            "last_stage": fact.last_stage.name.lower(),
            "utm_source": fact.dims.utm_source,
            "utm_medium": fact.dims.utm_medium,
            "utm_campaign": fact.dims.utm_campaign,
            "device": fact.dims.device,
            "country": fact.dims.country,
            "variant": fact.dims.variant,
        }
    )
