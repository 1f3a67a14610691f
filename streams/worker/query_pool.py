"""Read-only ClickHouse queries of the worker's endpoint, apart from the sink (issue 10).

The report and dashboard queries used to share the sink's one thread and client, so a wide report
held up the flush that the stream waits on. `QueryPool` runs them on clients and threads of its
own, at most `limit` at once; a request beyond that is refused at once (`QueryPoolBusyError`,
HTTP 503) rather than queued. chDB serves a second client of the same directory in-process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from clickhouse_connect.driver.client import Client

T = TypeVar("T")


class QueryPoolBusyError(Exception):
    """As many endpoint queries as allowed are running already."""


class QueryPool:
    """Clients are opened on first use (one per concurrent query: a client is not shared
    between threads) and kept for the next request."""

    def __init__(self, connect: Callable[[], Client], *, limit: int) -> None:
        self._connect = connect
        self._limit = limit
        self._running = 0
        self._idle: list[Client] = []
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="clickhouse-report")

    async def run(self, call: Callable[[Client], T]) -> T:
        if self._running >= self._limit:
            raise QueryPoolBusyError(f"{self._running} report queries are running; try again")
        self._running += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._call, call
            )
        finally:
            self._running -= 1

    def _call(self, call: Callable[[Client], T]) -> T:
        # list.pop/append are atomic: each thread gets a client no other thread holds.
        client = self._idle.pop() if self._idle else self._connect()
        try:
            return call(client)
        finally:
            self._idle.append(client)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for client in self._idle:
            client.close()
