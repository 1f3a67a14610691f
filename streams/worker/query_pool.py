"""Read-only ClickHouse queries of the worker's endpoint, apart from the sink (issue 10).

The report and dashboard queries used to share the sink's one thread and client, so a wide report
held up the flush that the stream waits on. `QueryPool` runs them on clients and threads of its
own, at most `limit` at once. Up to `queue` more wait for a slot (a dashboard page asks for a
few documents at once); past that a request is refused at once (`QueryPoolBusyError`, HTTP 503).
chDB serves a second client of the same directory in-process.
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

    def __init__(self, connect: Callable[[], Client], *, limit: int, queue: int = 16) -> None:
        self._connect = connect
        self._most = limit + queue
        self._slots = asyncio.Semaphore(limit)
        self._admitted = 0  # running or waiting
        self._idle: list[Client] = []
        self._executor = ThreadPoolExecutor(limit, thread_name_prefix="clickhouse-report")

    async def run(self, call: Callable[[Client], T]) -> T:
        if self._admitted >= self._most:
            raise QueryPoolBusyError(f"{self._admitted} report queries running or waiting")
        self._admitted += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._call, call
                )
        finally:
            self._admitted -= 1

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
