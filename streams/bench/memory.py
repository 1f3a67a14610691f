"""RSS per open session of the funnel engine, measured in a fresh process.

Each session gets a page view and, a second later, an add-to-cart with one item, fed to one
`PartitionFunnel` over a dict store in batches of 5,000 events, as the worker feeds it. Two
variants, in separate processes so one's freed memory cannot hide the other's:

- pending: all sessions start within 100 s of event time, so the watermark never gets 5 min
  (the lateness) past them: every event waits, undecided, in its session's state.
- finalised: sessions spread over 10 h, so all but the last 5 min are final (stages set, carts
  older than 30 min abandoned) and wait only to expire, as most of a real worker's sessions do.

RSS is /proc/self/status VmRSS after a gc, before and after; the store's encoded bytes (values
and keys) are what the worker's changelogged table holds for the same sessions.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from decimal import Decimal

import orjson

from schemas.event import Device, Event, EventType, Item
from streams.bench.engine import BATCH_MAX
from streams.bench.procs import BenchError
from streams.bench.results import MemoryRun
from streams.bench.system import rss_bytes
from streams.funnel.partition import PartitionFunnel
from streams.funnel.store import DictStore

VARIANTS = ("pending", "finalised")
_T0_MS = 1_700_000_000_000
_SPAN_MS = {"pending": 100_000, "finalised": 10 * 3_600_000}
_ADD_AFTER_MS = 1_000


def _sessions(variant: str, count: int, seed: int) -> Iterator[list[tuple[Event, int]]]:
    """Batches of (event, kafka timestamp): page view, then add-to-cart a second later."""
    rng = random.Random(seed)
    span_ms = _SPAN_MS[variant]
    per_batch = BATCH_MAX // 2
    for first in range(0, count, per_batch):
        batch: list[tuple[Event, int]] = []
        for i in range(first, min(count, first + per_batch)):
            at_ms = _T0_MS + i * span_ms // count
            session_id = f"s-{rng.getrandbits(64):016x}"
            sku = f"SKU-{rng.randrange(200):05d}"
            view = Event(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                event_type=EventType.PAGE_VIEW,
                occurred_at_ms=at_ms,
                site_id="shop-1",
                session_id=session_id,
                utm_source="google",
                utm_medium="cpc",
                utm_campaign="brand-search",
                referrer="https://www.google.com/",
                device=Device.MOBILE,
                country="DE",
                variant="A",
                page=f"/p/{sku}",
            )
            add = Event(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                event_type=EventType.ADD_TO_CART,
                occurred_at_ms=at_ms + _ADD_AFTER_MS,
                site_id="shop-1",
                session_id=session_id,
                device=Device.MOBILE,
                page=f"/p/{sku}",
                items=(Item(sku, 1, Decimal("49.90")),),
                value=Decimal("49.90"),
                currency="EUR",
                cart_id=f"c-{session_id[2:]}",
            )
            batch += [(view, view.occurred_at_ms), (add, add.occurred_at_ms)]
        # Event time order inside the batch, as a producer per session would deliver it.
        yield sorted(batch, key=lambda pair: pair[1])


def measure(variant: str, count: int, seed: int = 0) -> MemoryRun:
    store = DictStore()
    funnel = PartitionFunnel(store)
    gc.collect()
    before = rss_bytes()
    for batch in _sessions(variant, count, seed):
        funnel.process_batch(batch)
    gc.collect()
    growth = rss_bytes() - before
    sessions = funnel.open_sessions
    if sessions != count:
        raise BenchError(f"{count} sessions fed but {sessions} open")
    return MemoryRun(
        variant=variant,
        sessions=sessions,
        rss_growth_bytes=growth,
        stored_value_bytes=sum(len(v) for v in store.data.values()),
        stored_key_bytes=sum(len(k.encode()) for k in store.data),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--sessions", type=int, required=True)
    args = parser.parse_args(argv)
    run = measure(args.variant, args.sessions)
    sys.stdout.buffer.write(orjson.dumps(run) + b"\n")


def memory_run(variant: str, sessions: int, timeout_s: float) -> MemoryRun:
    """`measure` in a fresh interpreter, so its RSS holds nothing of the benchmark's own."""
    argv = [sys.executable, "-m", "streams.bench.memory", "--variant", variant]
    argv += ["--sessions", str(sessions)]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter and module
            argv, capture_output=True, check=True, timeout=timeout_s
        )
    except subprocess.SubprocessError as exc:
        raise BenchError(f"memory run ({variant}) failed: {exc}") from exc
    return MemoryRun(**orjson.loads(done.stdout))


if __name__ == "__main__":
    main()
