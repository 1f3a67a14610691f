"""Create our topics up front, with the partition count the session state depends on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings


class TopicError(RuntimeError):
    """A topic could not be created, or exists with another partition count."""


def worker_topics(settings: Settings) -> dict[str, int]:
    """The topics a worker reads and writes, all partitioned like the events topic."""
    n = settings.topic_partitions
    # The repartition topic is co-partitioned with the events topic: same count, always.
    return {
        settings.events_topic: n,
        settings.repartition_topic_name: n,
        settings.dlq_topic: n,
        settings.abandoned_topic: n,
        settings.spend_topic: n,
    }


async def create_topics(
    bootstrap: str,
    topics: Mapping[str, int],
    *,
    config: Mapping[str, str] | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> None:
    """Create `{name: partitions}` topics; one that already exists with that count is fine.

    Brokers that auto-create topics would pick their own partition count on first use. An
    existing topic with another count is an error: session state is partitioned like the
    events topic, so a silent mismatch would scatter it.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **dict(client_options or {}))
    await admin.start()
    try:
        new = [NewTopic(name, n, 1, topic_configs=dict(config or {})) for name, n in topics.items()]
        response = await admin.create_topics(new)
        existing = []
        for name, code, message in response.topic_errors:
            if code == TopicAlreadyExistsError.errno:
                existing.append(name)
            elif code != 0:
                raise TopicError(f"cannot create topic {name!r}: {message or code}")
        if existing:
            for described in await admin.describe_topics(existing):
                name, actual = described["topic"], len(described["partitions"])
                if actual != topics[name]:
                    raise TopicError(
                        f"topic {name!r} exists with {actual} partitions, not {topics[name]}"
                    )
    finally:
        await admin.close()
