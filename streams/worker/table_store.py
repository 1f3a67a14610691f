"""A `SessionStore` for one partition over a changelogged Faust table, with staged writes.

Writes are staged per batch. `apply()` moves them into the local table at the end of the
batch, so the next batch reads them, and returns their changelog records; the processor sends
those only after the sink has flushed the batch's rows. The changelog is what survives a crash,
so durable state never runs ahead of what ClickHouse holds: a crash in between replays events
against the older state and rewrites the same idempotent rows (the local table dies with the
process). The changelog partition is given explicitly, because in a batch that
mixes partitions Faust's "current event" would point at the wrong one, and records go through
`Publisher` rather than Faust's one-at-a-time producer buffer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.stores.memory import Store as MemoryStore

from streams.worker.publisher import Publisher


@dataclass(frozen=True, slots=True)
class ChangelogRecords:
    """A batch's state changes for one partition, as the changelog must receive them."""

    topic: str
    partition: int
    records: Sequence[tuple[bytes, bytes | None]]

    async def send(self, publisher: Publisher) -> None:
        # Same records Faust's own changelog write makes (raw key, raw value, None deletes),
        # so its recovery restores these keys.
        await publisher.send_batch(self.topic, self.partition, self.records)


class StagedTableStore:
    def __init__(self, table: faust.types.TableT[Any, Any], partition: int) -> None:
        self._table = table
        self._data = local_dict(table)
        self._partition = partition
        # One table holds every partition; the prefix keeps a partition's keys together.
        self._prefix = f"{partition}|"
        self._staged: dict[str, bytes | None] = {}

    def _table_key(self, key: str) -> bytes:
        return (self._prefix + key).encode()

    def get(self, key: str) -> bytes | None:
        if key in self._staged:
            return self._staged[key]
        return self._data.get(self._table_key(key))

    def put(self, key: str, value: bytes) -> None:
        self._staged[key] = value

    def delete(self, key: str) -> None:
        self._staged[key] = None

    def items(self) -> Iterator[tuple[str, bytes]]:
        prefix = self._prefix.encode()
        for table_key, value in list(self._data.items()):
            if table_key.startswith(prefix):
                yield table_key[len(prefix) :].decode(), value

    def apply(self) -> ChangelogRecords:
        """Write the staged changes to the local table at once (the next batch reads them) and
        return their changelog records, to be sent once the batch's rows are flushed."""
        data = self._data
        records: list[tuple[bytes, bytes | None]] = []
        for key, value in self._staged.items():
            table_key = self._table_key(key)
            if value is None:
                data.pop(table_key, None)
            else:
                data[table_key] = value
            records.append((table_key, value))
        self._staged.clear()
        return ChangelogRecords(
            self._table.changelog_topic.get_topic_name(), self._partition, records
        )

    def discard(self) -> None:
        """Forget the staged writes (the partition was revoked before they were committed)."""
        self._staged.clear()


def keep_only(table: faust.types.TableT[Any, Any], partitions: set[int]) -> None:
    """Drop the local keys of every partition not in `partitions` (the new assignment).

    Not at revocation: Faust revokes every partition at each rebalance, then recovers a kept
    partition only from where its last recovery stopped, so its keys must survive.
    """
    data = local_dict(table)
    for table_key in [k for k in data if int(k.split(b"|", 1)[0]) not in partitions]:
        data.pop(table_key, None)


def local_dict(table: faust.types.TableT[Any, Any]) -> dict[bytes, bytes]:
    """The dict inside the table's memory store (the worker's tables are `memory://`), which
    Faust's recovery also writes in place: used directly, since the store's mapping layers cost
    more than the lookups (and a raised KeyError for every session not seen yet)."""
    store = table.data
    if not isinstance(store, MemoryStore) or not isinstance(store.data, dict):
        raise TypeError(f"the worker's table needs Faust's memory store, not {type(store)}")
    return store.data
