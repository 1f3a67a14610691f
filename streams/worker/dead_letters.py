"""The dead-letter record: original bytes untouched; reason and source position in headers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.decode import Rejection

REASON = "funnel.reason"
REASON_CODE = "funnel.reason_code"
SOURCE_TOPIC = "funnel.source_topic"
SOURCE_PARTITION = "funnel.source_partition"
SOURCE_OFFSET = "funnel.source_offset"
REJECTED_AT = "funnel.rejected_at"
ORIGINAL_SIZE = "funnel.original_size"
ORIGINAL_SHA256 = "funnel.original_sha256"

# Kafka's default message limit is 1 MB; an oversize payload can't be forwarded whole, so the
# dead letter keeps its head plus the size and hash needed to find the original.
MAX_DEAD_LETTER_PAYLOAD = 256 * 1024


@dataclass(frozen=True, slots=True)
class SourcePosition:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    payload: bytes
    headers: list[tuple[str, bytes]]
    rejected_at_ms: int


def dead_letter(
    payload: bytes, rejection: Rejection, source: SourcePosition, *, rejected_at_ms: int
) -> DeadLetter:
    """The original bytes untouched, unless they are too large to produce at all."""
    headers = _headers(rejection, source, rejected_at_ms)
    if len(payload) <= MAX_DEAD_LETTER_PAYLOAD:
        return DeadLetter(payload, headers, rejected_at_ms)
    headers += [
        (ORIGINAL_SIZE, str(len(payload)).encode()),
        (ORIGINAL_SHA256, hashlib.sha256(payload).hexdigest().encode()),
    ]
    return DeadLetter(payload[:MAX_DEAD_LETTER_PAYLOAD], headers, rejected_at_ms)


def _headers(
    rejection: Rejection, source: SourcePosition, rejected_at_ms: int
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
