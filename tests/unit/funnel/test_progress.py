"""Events read in the wrong partition: forwarded with their source's verdict, held by markers.

The property test plays the worker's protocol (``processor`` + ``repartition``) over in-memory
queues: events spread over source partitions at random (as unkeyed producers do), each step of
a partition reads some of its source events and some of its repartition queue, forwards what
belongs elsewhere, announces its progress behind the forwards, and processes the rest. Steps run
in any order, a step may be replayed (a crash after the state was stored), and a partition may
be rebuilt from its store. The facts must equal the reference, with no event late.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.event import Event, EventType
from streams.funnel.facts import CartChanged, Fact, OrderPlaced, StageReached
from streams.funnel.partition import Outcome, PartitionFunnel
from streams.funnel.progress import SourceProgress
from streams.funnel.store import PROGRESS_KEY, WATERMARK_KEY
from tests.unit.funnel.builders import DAY_MS, T0, DictStore
from tests.unit.funnel.deliveries import RULES, Delivery, deliveries, identity
from tests.unit.funnel.reference import reference

L = RULES.lateness_ms
N = 3


def test_source_progress_judges_in_source_order_and_keeps_markers_monotonic() -> None:
    p = SourceProgress(RULES, partition=1, partitions=3)
    assert p.judge(T0, T0) is False
    assert p.judge(T0 + 20_000, T0 + 20_000) is False
    assert p.judge(T0 + 20_000 - L - 1, T0 + 30_000) is True  # behind its own source
    assert p.to_announce() == (T0 + 20_000, [0, 2])
    p.announced(T0 + 20_000)
    assert p.to_announce() is None
    assert p.hold_ms() is None  # partition 2 has not announced yet
    p.see(0, T0 + 5_000)
    p.see(2, T0 + 9_000)
    p.see(0, T0 + 1_000)  # a replayed older marker
    p.see(1, T0)  # its own partition is never a source of forwards to itself
    assert p.hold_ms() == T0 + 5_000
    assert p.lag_ms() == 15_000
    restored = SourceProgress(RULES, partition=1, partitions=3)
    raw = p.dump()
    assert raw is not None
    assert p.dump() is None  # unchanged since
    restored.load(raw)
    assert (restored.source.value, restored.hold_ms()) == (T0 + 20_000, T0 + 5_000)
    assert restored.to_announce() is not None  # a restarted worker announces again


def test_a_forward_late_at_its_source_is_late_and_the_hold_caps_finalisation() -> None:
    funnel = PartitionFunnel(DictStore(), RULES)
    funnel.hold_ms = None
    view = Event("v", EventType.PAGE_VIEW, T0, "s", "a")
    cart = Event("c", EventType.ADD_TO_CART, T0 + 1_000, "s", "a")
    # Its own events run far ahead; without every source's progress nothing is final.
    funnel.process_batch([(view, T0), (cart, T0 + 1_000)])
    ahead = Event("x", EventType.PAGE_VIEW, T0 + DAY_MS, "s", "b")
    assert funnel.process_batch([(ahead, T0 + DAY_MS)]).facts == ()
    assert funnel.watermark_ms is None
    # A forward from a source that is still behind is on time, though far behind this one.
    checkout = Event("k", EventType.CHECKOUT, T0 + 2_000, "s", "a")
    stale = Event("old", EventType.PAGE_VIEW, T0 + 3_000, "s", "a")
    funnel.hold_ms = T0
    result = funnel.process_batch([], [(checkout, False), (stale, True)])
    assert result.outcomes == (Outcome.ACCEPTED, Outcome.LATE)
    assert funnel.watermark_ms == T0
    funnel.hold_ms = T0 + DAY_MS
    stages = [f.stage.name for f in funnel.process_batch([]).facts if isinstance(f, StageReached)]
    assert stages == ["PAGE_VIEW", "ADD_TO_CART", "CHECKOUT"]


@dataclass
class Node:
    """One partition of the simulated worker: its store, funnel and progress."""

    partition: int
    store: DictStore = field(default_factory=DictStore)
    funnel: PartitionFunnel = field(init=False)
    progress: SourceProgress = field(init=False)

    def __post_init__(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        self.funnel = PartitionFunnel(self.store, RULES)
        self.progress = SourceProgress(RULES, self.partition, N)
        saved = self.store.get(PROGRESS_KEY)
        if saved is not None:
            self.progress.load(saved)
        self.funnel.hold_ms = self.progress.hold_ms()


Forward = tuple[Event, bool] | tuple[int, int]  # (event, late) or a marker (source, watermark)


def on_time(sends: list[tuple[Event, int]]) -> list[tuple[Event, int]]:
    """Drop repeats sent more than L after a newer event: late in any partition's order.
    (Originals never are; see ``deliveries``.)"""
    kept, newest = [], None
    for event, ts in sends:
        if newest is None or event.occurred_at_ms >= newest - L:
            kept.append((event, ts))
            newest = max(newest or event.occurred_at_ms, event.occurred_at_ms)
    return kept


class World:
    def __init__(self, d: Delivery, placement: list[int], home: dict[str, int]) -> None:
        self.home = home
        self.nodes = [Node(p) for p in range(N)]
        self.sources: list[list[tuple[Event, int]]] = [[] for _ in range(N)]
        for send, p in zip(on_time(d.sends), placement, strict=False):
            self.sources[p].append(send)
        self.queues: list[list[Forward]] = [[] for _ in range(N)]
        self.offsets = [[0, 0] for _ in range(N)]  # next offset read: source, queue
        self.facts: list[Fact] = []
        self.late = 0

    def step(self, p: int, n_source: int, n_queue: int, replay: bool) -> None:
        at = (self.offsets[p][0], self.offsets[p][1])
        taken = self.sources[p][:n_source], self.queues[p][:n_queue]
        del self.sources[p][:n_source], self.queues[p][:n_queue]
        self.offsets[p] = [at[0] + len(taken[0]), at[1] + len(taken[1])]
        self._run(p, at, *taken)
        if replay:  # the state was stored, the offsets were not: the same reads again
            self._run(p, at, *taken)

    def _run(
        self, p: int, at: tuple[int, int], reads: list[tuple[Event, int]], queue: list[Forward]
    ) -> None:
        """As the processor: reads the stored progress already covers are skipped."""
        node = self.nodes[p]
        progress = node.progress
        fresh = [q for i, q in enumerate(queue, at[1]) if not progress.replayed("queue", i)]
        new = [r for i, r in enumerate(reads, at[0]) if not progress.replayed("events", i)]
        progress.applied("queue", at[1] + len(queue))
        progress.applied("events", at[0] + len(reads))
        direct = []
        for event, ts in new:
            late = node.progress.judge(event.occurred_at_ms, ts)
            target = self.home[event.session_id]
            if target == p:
                direct.append((event, ts))
            else:
                self.queues[target].append((event, late))
        self.announce(node)
        forwarded = [item for item in fresh if isinstance(item[0], Event)]
        self.record(node, node.funnel.process_batch(direct, forwarded))
        for item in queue:
            if not isinstance(item[0], Event):
                node.progress.see(*item)
        node.funnel.hold_ms = node.progress.hold_ms()

    def announce(self, node: Node) -> None:
        due = node.progress.to_announce()
        if due is not None:
            for target in due[1]:
                self.queues[target].append((node.partition, due[0]))
            node.progress.announced(due[0])

    def record(self, node: Node, result: object) -> None:
        self.facts += result.facts  # type: ignore[attr-defined]
        self.late += result.outcomes.count(Outcome.LATE)  # type: ignore[attr-defined]
        raw = node.progress.dump()
        if raw is not None:
            node.store.put(PROGRESS_KEY, raw)

    def finish(self, now_ms: int) -> None:
        """Drain everything, then let the wall clock finalise every partition."""
        while any(self.sources) or any(self.queues):
            for p in range(N):
                self.step(p, len(self.sources[p]), len(self.queues[p]), replay=False)
        for tick in (now_ms, now_ms + RULES.idle_after_ms):
            for node in self.nodes:
                node.progress.source.tick(tick)
                self.announce(node)
            for p in range(N):
                self.step(p, 0, len(self.queues[p]), replay=False)
            for node in self.nodes:
                self.record(node, node.funnel.tick(tick))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(d=deliveries(), data=st.data())
def test_forwarded_events_count_exactly_whatever_the_partition_and_lag(
    d: Delivery, data: st.DataObject
) -> None:
    sessions = sorted({e.session_id for e in d.originals})
    home = {s: data.draw(st.integers(0, N - 1)) for s in sessions}
    placement = data.draw(st.lists(st.integers(0, N - 1), min_size=len(d.sends),
                                   max_size=len(d.sends)))  # fmt: skip
    world = World(d, placement, home)
    steps = st.tuples(st.integers(0, N - 1), st.integers(0, 6), st.integers(0, 6), st.booleans())
    for p, n_source, n_queue, replay in data.draw(st.lists(steps, max_size=40)):
        world.step(p, n_source, n_queue, replay)
        if data.draw(st.integers(0, 9)) == 0:
            world.nodes[p].rebuild()  # a restart: only the store survives
    world.finish(T0 + 10 * DAY_MS)

    assert world.late == 0
    assert [k for k, n in Counter(map(identity, world.facts)).items() if n > 1] == []
    expected = reference(d.originals, RULES)
    assert {f for f in world.facts if isinstance(f, StageReached)} == expected.stages
    assert {f for f in world.facts if isinstance(f, OrderPlaced)} == expected.orders
    assert {f for f in world.facts if isinstance(f, CartChanged)} == expected.carts
    for node in world.nodes:
        assert set(node.store.data) <= {WATERMARK_KEY, PROGRESS_KEY}
