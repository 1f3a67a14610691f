"""Stop the worker process when its agent cannot go on: loudly, non-zero, without acking.

A failure the worker cannot retry (ClickHouse rejected a write, disk full, a changelog or
dead-letter record the broker refuses) used to kill only the Faust agent: the process kept
serving /metrics and consumed nothing, so no orchestrator restarted it. Now it exits at once
with ``EXIT_FATAL``. ``os._exit`` skips Faust's shutdown on purpose: that would commit offsets
of events already acked, and the failed batch's effects are not all durable. The restart
resumes from the last committed offset; rows are idempotent, so the replay is exact.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn, Protocol

EXIT_FATAL = 70  # EX_SOFTWARE

log = logging.getLogger("funnel.worker")


class Fatal(Protocol):
    def __call__(self, error: BaseException, where: str) -> NoReturn: ...


def exit_process(error: BaseException, where: str) -> NoReturn:
    log.critical(
        "funnel worker stopping (exit %d): %s failed with %s: %s; the batch was not acked, "
        "a restart resumes from the last committed offset",
        EXIT_FATAL, where, type(error).__name__, error, exc_info=error,
    )  # fmt: skip
    for handler in logging.getLogger().handlers + log.handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_FATAL)
