"""Reads a replay brings again after their state was stored: skipped, not judged twice.

A crash after the state write but before the offsets were acked replays a batch whose effects
the stored state already holds; judged against that newer state, its events would come back
late. The state records the next offset it covers per topic (``SourceProgress``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from streams.funnel.partition import Outcome
from streams.funnel.progress import SourceProgress
from streams.worker.ingest import Accepted, PartitionBatch


@dataclass(frozen=True, slots=True)
class FreshReads:
    """A partition batch without the reads its stored state already covers: after a crash
    before the offsets were acked, those are neither judged, forwarded nor offered again
    (judged against the newer state they would come back late; see ``progress``)."""

    read_mask: list[bool]
    forwarded_mask: list[bool]
    read: list[Accepted]
    forwarded: list[tuple[Accepted, bool]]

    @staticmethod
    def of(progress: SourceProgress, part: PartitionBatch) -> FreshReads:
        def fresh(item: Accepted) -> bool:
            return not progress.replayed(item.message.topic, item.message.offset)

        reads = [fresh(a) for a in part.accepted]
        forwards = [fresh(a) for a, _ in part.forwarded]
        return FreshReads(
            reads,
            forwards,
            [a for a, keep in zip(part.accepted, reads, strict=True) if keep],
            [f for f, keep in zip(part.forwarded, forwards, strict=True) if keep],
        )


def read_outcome(offered: bool, fresh: bool, done: Iterator[Outcome]) -> Outcome:
    """A read's outcome: the funnel's if offered, forwarded elsewhere, or already applied."""
    if offered:
        return next(done)
    return Outcome.REPARTITIONED if fresh else Outcome.DUPLICATE
