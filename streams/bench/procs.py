"""Child processes of the benchmark: a clean environment, a log, and a stop that always ends."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.local.processes import stop_process_group

_LOG_TAIL_CHARS = 3000
_STOP_TIMEOUT_S = 60


class BenchError(RuntimeError):
    """A part of the benchmark could not run (not: ran slowly; that is a result)."""


def child_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This environment without the caller's FUNNEL_* settings, plus `overrides`.

    A FUNNEL_CLICKHOUSE_DSN or FUNNEL_KAFKA_* left in the shell must not send a benchmark
    worker to a real cluster.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    return env | dict(overrides)


class ChildProcess:
    """A subprocess in its own process group, output to `log_path`; `started` is monotonic."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.started = time.monotonic()
            self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                list(argv), env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self._process.pid

    def check_alive(self, what: str) -> None:
        if self._process.poll() is not None:
            raise BenchError(
                f"{what} exited with status {self._process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]

    def stop(self) -> None:
        """SIGTERM to the group; SIGKILL if it is still there after a minute. Safe twice."""
        stop_process_group(self._process, _STOP_TIMEOUT_S)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
