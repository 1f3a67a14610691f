"""Client-side workarounds for the tansu broker, applied only for `FUNNEL_KAFKA_FLAVOR=tansu`.

Production code needs these when it talks to tansu (the embedded default), so they live here
and not with the test broker (`streams.local.embedded_broker`). Each defect has a test in
`tests/integration/test_embedded_broker.py` that detects it, so a tansu upgrade that fixes one
shows up as a failing test:

1. ListOffsets(latest) answers "first offset of the last record batch + 1" instead of
   "last offset + 1". Faust reads end offsets to decide when table recovery is done, so tables
   silently come back short after a restart. `install_tansu_compat()` corrects the answer
   inside aiokafka's consumer.
2. A consumer-group join waits half the session timeout, and Faust's default is 60 s.
   `TANSU_CLIENT_TIMEOUTS` keeps joins and rebalances to a few seconds.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypedDict, cast

from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import Fetcher, OffsetResetStrategy
from aiokafka.errors import for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords


class FaustTimeoutSettings(TypedDict):
    """The `faust.App(...)` settings `ClientTimeouts` fills in, typed so `**` checks."""

    broker_session_timeout: float
    broker_rebalance_timeout: float
    broker_heartbeat_interval: float


@dataclass(frozen=True)
class ClientTimeouts:
    """Consumer-group timeouts, in seconds, for clients talking to tansu."""

    session: float
    rebalance: float
    heartbeat: float

    def faust_settings(self) -> FaustTimeoutSettings:
        """Keyword arguments for `faust.App(...)`."""
        return {
            "broker_session_timeout": self.session,
            "broker_rebalance_timeout": self.rebalance,
            "broker_heartbeat_interval": self.heartbeat,
        }


# tansu holds every join for session/2, so the session timeout is the cost of each join
# (3 s) and of each rebalance (~5 s). 6 s is also Kafka's smallest allowed session
# (group.min.session.timeout.ms), so these values work against a real broker too. The
# heartbeat stays at a third of the session, as Kafka advises; the rebalance timeout
# only bounds how long a member may take to rejoin, so it keeps Faust some slack.
TANSU_CLIENT_TIMEOUTS: Final = ClientTimeouts(session=6.0, rebalance=10.0, heartbeat=2.0)


_COMPAT_MARK: Final = "_funnelstream_tansu_compat"


def install_tansu_compat() -> None:
    """Make aiokafka consumers see true end offsets from tansu. Idempotent.

    Every ListOffsets request of an aiokafka consumer goes through
    `Fetcher._proc_offset_request`: `end_offsets()` (which Faust's table recovery calls
    through `AIOKafkaConsumerThread.highwaters`), `seek_to_end()` and
    `auto_offset_reset="latest"`. The wrapper keeps each "latest" answer `n > 0` as a
    lower bound, fetches from offset `n - 1` and takes the end of the record batches
    that come back (`base_offset + last_offset_delta + 1` from each batch header, so
    multi-record and control batches count right). On a correct broker offset `n - 1`
    is the last record, so the answer is unchanged; it only costs one Fetch.
    """
    original = Fetcher._proc_offset_request
    if getattr(original, _COMPAT_MARK, False):
        return

    @functools.wraps(original)
    async def proc_offset_request(
        self: Any, node_id: int, topic_data: Mapping[str, list[tuple[int, int]]]
    ) -> dict[TopicPartition, tuple[int, int | None]]:
        offsets = cast(
            dict[TopicPartition, tuple[int, int | None]],
            await original(self, node_id, topic_data),
        )
        reported: dict[TopicPartition, int] = {}
        for topic, partitions in topic_data.items():
            for partition, timestamp in partitions:
                tp = TopicPartition(topic, partition)
                # 0 means an empty partition: there is no batch to look into.
                if timestamp == OffsetResetStrategy.LATEST and offsets.get(tp, (0,))[0] > 0:
                    reported[tp] = offsets[tp][0]
        if reported:
            ends = await _batch_ends(self, node_id, {tp: n - 1 for tp, n in reported.items()})
            for tp, end in ends.items():
                offsets[tp] = (max(reported[tp], end), offsets[tp][1])
        return offsets

    setattr(proc_offset_request, _COMPAT_MARK, True)
    Fetcher._proc_offset_request = proc_offset_request


async def _batch_ends(
    fetcher: Any, node_id: int, starts: Mapping[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Offset after the last record batch returned by a Fetch from each start offset."""
    by_topic: dict[str, list[tuple[int, int, int]]] = {}
    for tp, start in starts.items():
        entry = (tp.partition, start, fetcher._max_partition_fetch_bytes)
        by_topic.setdefault(tp.topic, []).append(entry)
    # The start offsets exist, so min_bytes=1 answers at once. A zero max wait would be
    # cheaper still, but tansu then answers with no data at all.
    request = FetchRequest(
        fetcher._fetch_max_wait_ms,
        1,
        fetcher._fetch_max_bytes,
        fetcher._isolation_level,
        list(by_topic.items()),
    )
    response = await fetcher._client.send(node_id, request)
    ends: dict[TopicPartition, int] = {}
    for topic, partitions in response.topics:
        for partition, error_code, _highwater, *part_data in partitions:
            tp = TopicPartition(topic, partition)
            if error_code != 0:
                # Same errors, same retry policy as the ListOffsets call we correct.
                raise for_code(error_code)(tp)
            records = MemoryRecords(part_data[-1] or b"")
            while records.has_next():
                batch = records.next_batch()
                ends[tp] = max(ends.get(tp, 0), batch.next_offset)
    return ends
