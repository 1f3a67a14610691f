"""README promises: every setting documented, the two commands present, CI runs the test one."""

from __future__ import annotations

import re
from pathlib import Path

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    documented = set(re.findall(r"^\| `(FUNNEL_[A-Z_]+)` \|", README, flags=re.MULTILINE))
    expected = {f"FUNNEL_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_readme_gives_exactly_the_two_commands_and_ci_runs_the_test_one() -> None:
    block = README.split("## The two commands", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.MULTILINE)
    assert "set -euo pipefail" in ci
