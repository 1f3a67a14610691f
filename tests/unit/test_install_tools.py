""".ci/install-tools, which `make test` and .ci/run both call: nothing to do when the tools
are there; on a machine where apt cannot run, it stops at once and prints the command."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "install-tools"
PACKAGES = "prometheus prometheus-alertmanager chromium chromium-driver"


def bin_dir(tmp_path: Path, tools: tuple[str, ...]) -> Path:
    """A PATH with only what the script itself runs, plus stand-ins for `tools`."""
    path = tmp_path / "bin"
    path.mkdir()
    for name in ("bash", "env", "id", "sh"):
        found = shutil.which(name)
        assert found, name
        (path / name).symlink_to(found)
    for name in tools:
        (path / name).write_text("#!/bin/sh\nexit 0\n")
        (path / name).chmod(0o755)
    return path


def run(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(path / "bash"), str(SCRIPT)], env={"PATH": str(path)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_nothing_to_do_when_every_tool_is_on_path(tmp_path: Path) -> None:
    done = run(bin_dir(tmp_path, ("promtool", "amtool", "chromium", "chromedriver")))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@pytest.mark.parametrize("present", [(), ("promtool", "amtool"), ("chromium", "chromedriver")])
def test_without_apt_it_stops_at_once_with_the_exact_command(
    tmp_path: Path, present: tuple[str, ...]
) -> None:
    done = run(bin_dir(tmp_path, present))
    assert done.returncode == 1
    assert f"sudo apt-get install -y --no-install-recommends {PACKAGES}" in done.stderr


def test_make_test_and_ci_both_run_it() -> None:
    root = SCRIPT.parents[1]
    makefile = (root / "Makefile").read_text()
    assert "\t.ci/install-tools\n" in makefile
    assert makefile.split("\ntest: ", 1)[1].split()[0] == "tools"
    assert "\n.ci/install-tools\n" in (root / ".ci" / "run").read_text()
    assert os.access(SCRIPT, os.X_OK)
