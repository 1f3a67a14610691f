"""Stopping the child processes local tooling starts (tansu, benchmark and test workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM to the child's process group, SIGKILL if it is still there after `timeout`
    seconds; returns the exit status. Safe to call twice.

    The child must have been started with `start_new_session=True`, so the group reaches
    anything it spawned and nothing of ours.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
