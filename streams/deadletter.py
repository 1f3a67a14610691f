"""The dead-letter record: original bytes untouched; reason and source position in headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.decode import Rejection

REASON = "funnel.reason"
REASON_CODE = "funnel.reason_code"
SOURCE_TOPIC = "funnel.source_topic"
SOURCE_PARTITION = "funnel.source_partition"
SOURCE_OFFSET = "funnel.source_offset"
REJECTED_AT = "funnel.rejected_at"


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


def dead_letter_headers(
    rejection: Rejection, source: SourcePosition, *, rejected_at_ms: int
) -> list[tuple[str, bytes]]:
    rejected_at = datetime.fromtimestamp(rejected_at_ms / 1000, tz=UTC)
    return [
        (REASON, rejection.detail.encode()),
        (REASON_CODE, rejection.code.encode()),
        (SOURCE_TOPIC, source.topic.encode()),
        (SOURCE_PARTITION, str(source.partition).encode()),
        (SOURCE_OFFSET, str(source.offset).encode()),
        (REJECTED_AT, rejected_at.isoformat(timespec="milliseconds").encode()),
    ]
