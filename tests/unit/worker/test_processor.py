"""`FunnelProcessor`: revoked partitions are left alone, the idle tick waits for a settled,
caught-up partition, and the sink is flushed before any state reaches the table."""

from __future__ import annotations

import asyncio

import pytest

from sinks.tables import COLUMNS
from streams.funnel.partition import Outcome
from streams.funnel.rules import FunnelRules
from tests.unit.funnel.builders import ADD, PV, T0, ev
from tests.unit.worker.fakes import ABANDONED, Rig, accepted

RULES = FunnelRules()


def test_a_revoked_partitions_events_are_neither_processed_nor_stored() -> None:
    rig = Rig(RULES, now_ms=T0)
    rig.owned = {0}
    batch = {
        0: ([accepted(ev(PV, T0, session_id="a"), 0, 10)], 10),
        1: ([accepted(ev(PV, T0, session_id="b"), 1, 20)], 20),
    }
    outcomes = asyncio.run(rig.processor.process(batch))
    assert outcomes == {0: [Outcome.ACCEPTED], 1: [Outcome.REVOKED]}
    # Only partition 0's event became a raw row and state; partition 1's new owner replays it.
    session = COLUMNS["events_raw"].index("session_id")
    assert [row[session] for row in rig.sink.rows["events_raw"]] == ["a"]
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0"}
    assert {partition for _, _, _, partition in rig.publisher.sent} == {0}


def test_revoke_forgets_the_partitions_state_and_keeps_the_others() -> None:
    rig = Rig(RULES, now_ms=T0)
    batch = {p: ([accepted(ev(PV, T0, session_id=f"s{p}"), p, 1)], 1) for p in (0, 1)}
    asyncio.run(rig.processor.process(batch))
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0", b"1"}
    asyncio.run(rig.processor.revoke({1}))
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0"}


def abandoned_cart_rig() -> Rig:
    """Partition 0 holds an open cart, its events all read (position 6 == end offset 6)."""
    rig = Rig(RULES, now_ms=T0)
    rig.end_offsets[0] = 6
    asyncio.run(rig.processor.process({0: ([accepted(ev(ADD, T0), 0, 5)], 5)}))
    rig.journal.clear()
    return rig


def tick_until_abandoned(rig: Rig) -> None:
    # First tick starts the idle period; the second, a full idle period later, moves the
    # watermark past the abandonment timeout.
    rig.now_ms = T0 + RULES.abandonment_ms + 2 * RULES.lateness_ms
    asyncio.run(rig.processor.tick())
    rig.now_ms += RULES.idle_after_ms
    asyncio.run(rig.processor.tick())


def cart_statuses(rig: Rig) -> list[str]:
    status = COLUMNS["carts"].index("status")
    return [row[status] for row in rig.sink.rows.get("carts", [])]


def test_tick_abandons_a_cart_of_a_caught_up_partition() -> None:
    rig = abandoned_cart_rig()
    tick_until_abandoned(rig)
    assert ("send", ABANDONED) in rig.journal
    assert "abandoned" in cart_statuses(rig)


def test_tick_does_nothing_while_a_rebalance_is_in_progress() -> None:
    rig = abandoned_cart_rig()
    rig.settled = False
    tick_until_abandoned(rig)
    assert rig.journal == []  # no state read or written, nothing flushed or sent


def test_tick_leaves_a_partition_with_a_backlog_to_event_time() -> None:
    rig = abandoned_cart_rig()
    rig.end_offsets[0] = 1_000  # more to read: the wall clock must not overtake it
    tick_until_abandoned(rig)
    assert ("send", ABANDONED) not in rig.journal
    assert "carts" not in rig.sink.rows or all(
        row[6] != "abandoned" for row in rig.sink.rows["carts"]
    )


def test_the_sink_is_flushed_before_any_state_is_written() -> None:
    rig = Rig(RULES, now_ms=T0)
    events = [accepted(ev(PV, T0 + i, session_id=f"s{i}"), 0, i) for i in range(3)]
    asyncio.run(rig.processor.process({0: (events, 2)}))
    flushed = rig.journal.index(("flush",))
    changelog = [i for i, entry in enumerate(rig.journal) if entry == ("send", rig.changelog)]
    assert changelog, "state was written"
    assert flushed < min(changelog)
    assert all(entry[0] != "add" for entry in rig.journal[flushed:])


def test_a_failed_flush_leaves_the_table_and_its_changelog_untouched() -> None:
    rig = Rig(RULES, now_ms=T0)
    rig.sink.fail_flush = True
    with pytest.raises(RuntimeError, match="ClickHouse is down"):
        asyncio.run(rig.processor.process({0: ([accepted(ev(PV, T0), 0, 1)], 1)}))
    assert dict(rig.table.data) == {}
    assert ("send", rig.changelog) not in rig.journal
