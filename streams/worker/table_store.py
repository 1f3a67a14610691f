"""A `SessionStore` for one partition over a changelogged Faust table, with staged writes.

Writes are staged and only reach the table (and its changelog) on `commit()`, which the
processor calls after the sink has flushed the batch's rows: state never runs ahead of what
ClickHouse holds, so a crash in between replays events against the older state and rewrites
the same idempotent rows. The changelog partition is given explicitly, because in a batch that
mixes partitions Faust's "current event" would point at the wrong one, and records go through
`Publisher` rather than Faust's one-at-a-time producer buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import faust

from streams.worker.publisher import Publisher


class StagedTableStore:
    def __init__(self, table: faust.types.TableT[Any, Any], partition: int) -> None:
        self._table = table
        self._partition = partition
        # One table holds every partition; the prefix keeps a partition's keys together.
        self._prefix = f"{partition}|"
        self._staged: dict[str, bytes | None] = {}

    def _table_key(self, key: str) -> bytes:
        return (self._prefix + key).encode()

    def get(self, key: str) -> bytes | None:
        if key in self._staged:
            return self._staged[key]
        value: bytes | None = self._table.data.get(self._table_key(key))
        return value

    def put(self, key: str, value: bytes) -> None:
        self._staged[key] = value

    def delete(self, key: str) -> None:
        self._staged[key] = None

    def items(self) -> Iterator[tuple[str, bytes]]:
        prefix = self._prefix.encode()
        for table_key, value in list(self._table.data.items()):
            if table_key.startswith(prefix):
                yield table_key[len(prefix) :].decode(), value

    async def commit(self, publisher: Publisher) -> int:
        """Write the staged changes to the table and its changelog; returns how many."""
        data = self._table.data
        changelog = self._table.changelog_topic.get_topic_name()
        for key, value in self._staged.items():
            table_key = self._table_key(key)
            if value is None:
                data.pop(table_key, None)
            else:
                data[table_key] = value
            # Same record Faust's own changelog write makes (raw key, raw value, None deletes),
            # so its recovery restores these keys.
            await publisher.send(changelog, key=table_key, value=value, partition=self._partition)
        written = len(self._staged)
        self._staged.clear()
        return written

    def discard(self) -> None:
        """Forget the staged writes (the partition was revoked before they were committed)."""
        self._staged.clear()


def keep_only(table: faust.types.TableT[Any, Any], partitions: set[int]) -> None:
    """Drop the local keys of every partition not in `partitions` (the new assignment).

    Not at revocation: Faust revokes every partition at each rebalance, then recovers a kept
    partition only from where its last recovery stopped, so its keys must survive.
    """
    data = table.data
    for table_key in [k for k in data if int(k.split(b"|", 1)[0]) not in partitions]:
        data.pop(table_key, None)
