"""What accepting an event adds to a session's size estimate: it is stored with the state, so
the figure must not drift between versions."""

from decimal import Decimal

from schemas.event import Device
from streams.funnel.session_size import event_bytes
from tests.unit.funnel.builders import ADD, PV, T0, ev, item


def test_an_event_counts_its_ids_money_and_lines() -> None:
    e = ev(ADD, T0, event_id="e1", user_id="u", value=Decimal(5), items=(item("sku"),))
    # 64 + event_id (2*2+2) + user_id (2*1+2) + value 24 + line (40 + 2*3+2)
    assert event_bytes(e, with_dims=False) == 146


def test_strings_count_twice_their_utf8_size() -> None:
    ascii_id = ev(PV, T0, event_id="abcd")
    wide_id = ev(PV, T0, event_id="\u00e4bcd")  # 5 bytes in UTF-8
    emoji_id = ev(PV, T0, event_id="\U0001f600bcd")  # 7 bytes in UTF-8
    base = event_bytes(ascii_id, with_dims=False)
    assert event_bytes(wide_id, with_dims=False) == base + 2
    assert event_bytes(emoji_id, with_dims=False) == base + 6


def test_dims_count_only_while_the_session_has_no_first_touch() -> None:
    e = ev(PV, T0, utm_source="\u00fc", device=Device.MOBILE, country="DE", variant=None)
    # utm_source (2*2+2) and country (2*2+2); the device is not counted.
    assert event_bytes(e, with_dims=True) - event_bytes(e, with_dims=False) == 12
