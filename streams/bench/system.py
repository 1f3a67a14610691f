"""What the benchmark knows about the machine and processes: /proc (Linux) and the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from streams.bench.results import Machine

# The libraries the figures depend on most.
_DISTRIBUTIONS = ("faust-streaming", "aiokafka", "orjson", "chdb", "clickhouse-connect")


def parse_kib_field(text: str, name: str) -> int:
    """Bytes of a `Name:   123 kB` line of /proc/<pid>/status or /proc/meminfo."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return int(value.split()[0]) * 1024
    raise ValueError(f"no {name} in the given text")


def parse_cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown CPU"


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (default: this one), from /proc/<pid>/status."""
    status = Path(f"/proc/{pid if pid is not None else 'self'}/status").read_text()
    return parse_kib_field(status, "VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (all its threads), from /proc."""
    # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def machine() -> Machine:
    versions = {}
    for name in _DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return Machine(
        cores=os.cpu_count() or 1,
        cpu_model=parse_cpu_model(Path("/proc/cpuinfo").read_text()),
        memory_bytes=parse_kib_field(Path("/proc/meminfo").read_text(), "MemTotal"),
        python=f"Python {platform.python_version()}",
        platform=platform.platform(),
        versions=versions,
    )


def _git(cwd: Path, *args: str) -> str:
    argv = ["git", *args]
    done = subprocess.run(  # noqa: S603 - git from PATH, fixed arguments
        argv, cwd=cwd, capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.strip()


def git_commit(cwd: Path) -> str | None:
    """Short commit of the checkout, `+dirty` with local changes; None outside git."""
    try:
        head = _git(cwd, "rev-parse", "--short", "HEAD")
        dirty = _git(cwd, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head
