"""`FunnelProcessor`: revoked partitions are left alone, the idle tick waits for a settled,
caught-up partition, and the sink is flushed before any state reaches the table."""

from __future__ import annotations

import asyncio

import pytest

from sinks.tables import COLUMNS
from streams.funnel.partition import Outcome
from streams.funnel.rules import FunnelRules
from streams.worker.repartition import LATE_HEADER
from tests.unit.funnel.builders import ADD, DAY_MS, PV, T0, ev
from tests.unit.worker.fakes import ABANDONED, REPARTITION, Rig, accepted, batch_of

RULES = FunnelRules()


def test_a_revoked_partitions_events_are_neither_processed_nor_stored() -> None:
    rig = Rig(RULES, now_ms=T0)
    rig.owned = {0}
    batch = {
        0: batch_of([accepted(ev(PV, T0, session_id="a"), 0, 10)], 10),
        1: batch_of([accepted(ev(PV, T0, session_id="b"), 1, 20)], 20),
    }
    outcomes = rig.process(batch)
    assert outcomes == {0: [Outcome.ACCEPTED], 1: [Outcome.REVOKED]}
    # Only partition 0's event became a raw row and state; partition 1's new owner replays it.
    session = COLUMNS["events_raw"].index("session_id")
    assert [row[session] for row in rig.sink.rows["events_raw"]] == ["a"]
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0"}
    changelog = {p for topic, _, _, p in rig.publisher.sent if topic == rig.changelog}
    assert changelog == {0}


def test_revoke_keeps_the_table_and_a_new_assignment_drops_the_partitions_not_in_it() -> None:
    rig = Rig(RULES, now_ms=T0)
    batch = {p: batch_of([accepted(ev(PV, T0, session_id=f"s{p}"), p, 1)], 1) for p in (0, 1)}
    rig.process(batch)
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0", b"1"}
    # Every rebalance revokes everything first; a partition assigned again is recovered only
    # from where its last recovery stopped, so its keys must survive the revoke.
    asyncio.run(rig.processor.revoke({0, 1}))
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0", b"1"}
    asyncio.run(rig.processor.keep_partitions({0}))
    assert {key.split(b"|")[0] for key in rig.table.data} == {b"0"}


def abandoned_cart_rig() -> Rig:
    """Partition 0 holds an open cart, its events all read (position 6 == end offset 6). One
    partition: no other source's progress holds it back."""
    rig = Rig(RULES, now_ms=T0, partitions=1)
    rig.end_offsets[0] = 6
    rig.process({0: batch_of([accepted(ev(ADD, T0), 0, 5)], 5)})
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
    # Sessions of partition 0 (of 2): processed in place, nothing forwarded.
    events = [accepted(ev(PV, T0 + i, session_id=s), 0, i) for i, s in enumerate(["a", "b", "x"])]
    rig.process({0: batch_of(events, 2)})
    flushed = rig.journal.index(("flush",))
    changelog = [i for i, entry in enumerate(rig.journal) if entry == ("send", rig.changelog)]
    assert changelog, "state was written"
    assert flushed < min(changelog)
    assert all(entry[0] != "add" for entry in rig.journal[flushed:])


def test_a_failed_flush_leaves_the_changelog_untouched() -> None:
    rig = Rig(RULES, now_ms=T0)
    rig.sink.fail_flush = True
    with pytest.raises(RuntimeError, match="ClickHouse is down"):
        rig.process({0: batch_of([accepted(ev(PV, T0), 0, 1)], 1)})
    # The next batch already reads the state from the in-memory table, which dies with the
    # worker (a failed batch stops it); only the changelog survives, and it got nothing.
    assert rig.table.data
    assert ("send", rig.changelog) not in rig.journal


def test_a_forward_goes_to_its_sessions_partition_before_the_marker_behind_it() -> None:
    rig = Rig(RULES, now_ms=T0)
    # Read in partition 1, session "a" lives in partition 0 (of 2); "s1" lives in 1.
    late = accepted(ev(PV, T0 - RULES.lateness_ms - 1, session_id="a"), 1, 3)
    events = [
        accepted(ev(PV, T0, session_id="s1"), 1, 1),
        accepted(ev(PV, T0, session_id="a"), 1, 2),
        late,
    ]
    outcomes = rig.process({1: batch_of(events, 3)})
    assert outcomes == {1: [Outcome.ACCEPTED, Outcome.REPARTITIONED, Outcome.REPARTITIONED]}
    forwards = [
        (key, partition, (LATE_HEADER, b"1") in headers)
        for (topic, key, value, partition), headers in zip(
            rig.publisher.sent, rig.publisher.headers, strict=True
        )
        if topic == REPARTITION and value
    ]
    # The second is late in its source partition's own order, and says so.
    assert forwards == [(b"a", 0, False), (b"a", 0, True)]
    # The forwards are on the broker before the marker (empty value) that covers them.
    journal = [e for e in rig.journal if e in {("send", REPARTITION), ("delivered",)}]
    assert journal[:4] == [("send", REPARTITION), ("send", REPARTITION), ("delivered",),
                           ("send", REPARTITION)]  # fmt: skip
    marker = [r for r in rig.publisher.sent if r[0] == REPARTITION and not r[2]]
    assert [partition for *_, partition in marker] == [0]


def test_a_batch_replayed_after_its_state_was_stored_is_not_judged_again() -> None:
    """A crash after the state reached the table but before the offsets were acked: the batch
    comes again. Judged against the newer state, the first event would be late (its session
    expired once the second event moved the watermark three days on); it is already counted."""
    rig = Rig(RULES, now_ms=T0 + 4 * DAY_MS, partitions=1)
    events = [ev(PV, T0, session_id="a"), ev(PV, T0 + 3 * DAY_MS, session_id="b")]
    batch = {0: batch_of([accepted(e, 0, offset) for offset, e in enumerate(events)], 1)}
    first = rig.process(batch)
    assert first == {0: [Outcome.ACCEPTED, Outcome.ACCEPTED]}
    rows = list(rig.sink.rows["events_raw"])
    asyncio.run(rig.processor.revoke({0}))  # a restart: only the table survives
    replayed = rig.process(batch)
    assert replayed == {0: [Outcome.DUPLICATE, Outcome.DUPLICATE]}
    assert rig.sink.rows["events_raw"] == rows
    # Reads after the stored state are processed as ever.
    later = {0: batch_of([accepted(ev(PV, T0 + 3 * DAY_MS + 1, session_id="b"), 0, 2)], 2)}
    assert rig.process(later) == {0: [Outcome.ACCEPTED]}
