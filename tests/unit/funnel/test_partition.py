"""Watermark, lateness, finalisation timing, idle ticks, store writes, restarts and expiry."""

from streams.funnel.facts import CartChanged, CartStatus, Fact, Stage, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.store import WATERMARK_KEY, DictStore, session_key
from tests.unit.funnel.builders import (
    ADD,
    DAY_MS,
    PV,
    RULES,
    T0,
    ev,
    flush,
    stage_times,
)

L = RULES.lateness_ms
SKEW = RULES.max_skew_ms


def test_a_future_dated_event_does_not_move_the_watermark() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    # A phone a year in the future, observed now: accepted, but no evidence of time.
    result = funnel.process_batch([(ev(PV, T0 + 365 * DAY_MS), T0)])
    assert result.outcomes == (Outcome.ACCEPTED,)
    assert result.watermark_ms is None
    result = funnel.process_batch([(ev(PV, T0 + SKEW, session_id="y"), T0)])
    assert result.outcomes == (Outcome.ACCEPTED,)
    assert result.watermark_ms == T0 + SKEW  # within the skew: it counts


def test_late_event_is_refused_and_changes_nothing() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(PV, T0 + 10 * L), T0 + 10 * L)])
    bound = T0 + 9 * L
    result = funnel.process_batch(
        [(ev(PV, bound - 1, session_id="y"), T0), (ev(PV, bound, session_id="z"), T0)]
    )
    assert result.outcomes == (Outcome.LATE, Outcome.ACCEPTED)
    facts = flush(funnel, T0 + 100 * DAY_MS)
    assert {f.session_id for f in facts} == {"x", "z"}


def test_late_events_do_not_move_the_watermark() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(PV, T0 + 10 * L), T0 + 10 * L)])
    result = funnel.process_batch([(ev(PV, T0, session_id="y"), T0 + 99 * L)])
    assert result.outcomes == (Outcome.LATE,)
    assert result.watermark_ms == T0 + 10 * L


def test_duplicate_outcome_and_order_of_checks() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    first = ev(PV, T0, event_id="a")
    out = funnel.process_batch([(first, T0), (first, T0), (ev(PV, T0 + 10 * L), T0 + 10 * L)])
    assert out.outcomes == (Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.ACCEPTED)
    # Replayed long after: still recognised as a duplicate (not counted as late) while kept.
    assert funnel.process_batch([(first, T0)]).outcomes == (Outcome.DUPLICATE,)


def test_facts_wait_until_the_bound_passes_them() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    assert funnel.process_batch([(ev(PV, T0), T0)]).facts == ()
    # bound = T0 + L - L = T0: not yet past the event
    assert funnel.process_batch([(ev(PV, T0 + L, session_id="y"), T0 + L)]).facts == ()
    result = funnel.process_batch([(ev(PV, T0 + L + 1, session_id="z"), T0 + L + 1)])
    assert [(f.session_id, stage_times([f])) for f in result.facts] == [
        ("x", {Stage.PAGE_VIEW: T0})
    ]


def test_out_of_order_within_lateness_gives_the_in_order_result() -> None:
    in_order = [ev(PV, T0), ev(ADD, T0 + 1000), ev(PV, T0 + 2000, session_id="y")]
    shuffled = [in_order[2], in_order[1], in_order[0]]
    results = []
    for events in (in_order, shuffled):
        funnel = PartitionFunnel(DictStore(), RULES)
        facts = list(funnel.process_batch([(e, e.occurred_at_ms) for e in events]).facts)
        results.append(sorted(map(repr, facts + flush(funnel, T0 + 100 * DAY_MS))))
    assert results[0] == results[1]


def test_tick_advances_only_after_a_full_idle_period() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(PV, T0), T0)])
    now = T0 + DAY_MS
    assert funnel.tick(now).watermark_ms == T0  # starts the idle period
    assert funnel.tick(now + RULES.idle_after_ms - 1).watermark_ms == T0
    funnel.process_batch([])  # an empty poll is still idle
    result = funnel.tick(now + RULES.idle_after_ms)
    assert result.watermark_ms == now + RULES.idle_after_ms - L
    assert stage_times(result.facts) == {Stage.PAGE_VIEW: T0}


def test_a_batch_with_events_resets_the_idle_period() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    now = T0 + DAY_MS
    funnel.tick(now)
    funnel.process_batch([(ev(PV, T0), T0)])  # a backlog, hours behind the wall clock
    assert funnel.tick(now + RULES.idle_after_ms).watermark_ms == T0


def test_tick_never_moves_the_watermark_back() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(PV, T0), T0)])
    funnel.tick(T0 - DAY_MS)
    assert funnel.tick(T0 - DAY_MS + RULES.idle_after_ms).watermark_ms == T0


def test_each_session_is_written_once_per_batch_then_the_watermark() -> None:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    batch = [(ev(PV, T0 + i, session_id=f"s{i % 3}"), T0 + i) for i in range(30)]
    result = funnel.process_batch(batch)
    assert result.sessions_written == 3
    assert store.writes == 4
    assert list(store.data)[-1] == WATERMARK_KEY
    # Duplicates and late events alone write nothing at all.
    store.writes = 0
    funnel.process_batch(batch[:5])
    assert store.writes == 0


def test_restart_from_the_store_continues_exactly() -> None:
    events = [ev(PV, T0), ev(ADD, T0 + 1), ev(PV, T0 + 2, session_id="y")]
    straight = PartitionFunnel(DictStore(), RULES)
    expected = list(straight.process_batch([(e, e.occurred_at_ms) for e in events]).facts)
    expected += flush(straight, T0 + 100 * DAY_MS)

    store = DictStore()
    first = PartitionFunnel(store, RULES)
    got = list(first.process_batch([(e, e.occurred_at_ms) for e in events[:2]]).facts)
    second = PartitionFunnel(store, RULES)
    assert second.watermark_ms == first.watermark_ms
    assert second.open_sessions == 1
    got += second.process_batch([(events[2], events[2].occurred_at_ms)]).facts
    assert second.process_batch([(events[0], T0)]).outcomes == (Outcome.DUPLICATE,)
    got += flush(second, T0 + 100 * DAY_MS)
    assert sorted(map(repr, got)) == sorted(map(repr, expected))


def test_sessions_expire_and_state_stays_bounded() -> None:
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    funnel.process_batch([(ev(ADD, T0), T0)])
    assert funnel.open_sessions == 1
    last_needed = T0 + RULES.retention_ms + L
    result = funnel.process_batch([(ev(PV, last_needed, session_id="y"), last_needed)])
    assert funnel.open_sessions == 2  # bound == last + retention: not past it yet
    assert result.sessions_expired == 0
    result = funnel.process_batch([(ev(PV, last_needed + 1, session_id="z"), last_needed + 1)])
    assert result.sessions_expired == 1
    assert session_key("s1", "x") not in store.data
    flush(funnel, last_needed + 100 * DAY_MS)
    assert list(store.data) == [WATERMARK_KEY]
    assert funnel.open_sessions == 0


def test_session_id_reused_after_expiry_starts_a_new_session() -> None:
    reuse_at = T0 + RULES.retention_ms + L + 1
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.process_batch([(ev(ADD, T0), T0)])
    funnel.process_batch([(ev(PV, reuse_at, session_id="other"), reuse_at)])
    facts = list(funnel.process_batch([(ev(ADD, reuse_at), reuse_at)]).facts)
    facts += flush(funnel, reuse_at + 100 * DAY_MS)
    rows = [(f.cart_seq, f.status, f.opened_at_ms) for f in facts if isinstance(f, CartChanged)]
    assert (1, CartStatus.OPEN, reuse_at) in rows


def test_expiry_does_not_depend_on_batch_boundaries() -> None:
    reuse_at = T0 + RULES.retention_ms + L + 1
    events = [ev(ADD, T0), ev(PV, reuse_at, session_id="other"), ev(ADD, reuse_at)]
    runs = []
    for cuts in ([3], [1, 3], [2, 3], [1, 2, 3]):
        funnel = PartitionFunnel(DictStore(), RULES)
        facts: list[Fact] = []
        outcomes: list[Outcome] = []
        start = 0
        for cut in cuts:
            result = funnel.process_batch([(e, e.occurred_at_ms) for e in events[start:cut]])
            facts += result.facts
            outcomes += result.outcomes
            start = cut
        facts += flush(funnel, reuse_at + 100 * DAY_MS)
        runs.append((outcomes, sorted(map(repr, facts))))
    assert all(r == runs[0] for r in runs)


def test_restored_watermark_older_than_a_session_does_not_rewrite_it() -> None:
    # Crash between the session write and the watermark write: the stored watermark is older.
    store = DictStore()
    funnel = PartitionFunnel(store, RULES)
    funnel.process_batch([(ev(PV, T0), T0)])
    old_watermark = store.data[WATERMARK_KEY]
    funnel.process_batch([(ev(PV, T0 + 10 * L), T0 + 10 * L)])
    store.data[WATERMARK_KEY] = old_watermark
    restarted = PartitionFunnel(store, RULES)
    result = restarted.process_batch([(ev(PV, T0 + 1), T0 + 1)])
    assert result.outcomes == (Outcome.LATE,)
    facts = flush(restarted, T0 + 100 * DAY_MS)
    assert [f.reached_at_ms for f in facts if isinstance(f, StageReached)] == []
