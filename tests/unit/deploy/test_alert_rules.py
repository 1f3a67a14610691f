"""The alert rules: promtool accepts them, their unit tests pass, and each alert is complete.

promtool (Debian package `prometheus`) and amtool (`prometheus-alertmanager`) are required:
without them these tests fail rather than skip, so CI cannot go green without running them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules" / "funnel.rules.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.test.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK_SECTIONS = ("## What it means", "## Check first", "## Mitigate")


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install {package}")
    return path


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    done = run(tool("promtool", "prometheus"), "check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_rule_unit_tests_pass() -> None:
    promtool = tool("promtool", "prometheus")
    assert RULE_TESTS, "no deploy/prometheus/tests/*.test.yml"
    # One process per file, all at once: each file takes seconds of single-threaded evaluation.
    running = [
        (
            path,
            subprocess.Popen(
                [promtool, "test", "rules", str(path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for path in RULE_TESTS
    ]
    failures = []
    for path, process in running:
        output, _ = process.communicate(timeout=300)
        if process.returncode != 0:
            failures.append(f"{path.name}:\n{output}")
    assert not failures, "\n".join(failures)


def test_prometheus_config_is_valid() -> None:
    done = run(
        tool("promtool", "prometheus"), "check", "config", str(PROMETHEUS / "prometheus.yml")
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alertmanager_config_is_valid_and_routes_by_severity() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    done = run(amtool, "check-config", str(ALERTMANAGER))
    assert done.returncode == 0, done.stdout + done.stderr
    receivers = {}
    for severity in ("critical", "warning"):
        routed = run(
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            f"severity={severity}",
        )
        assert routed.returncode == 0, routed.stdout + routed.stderr
        receivers[severity] = routed.stdout.strip()
    assert receivers == {"critical": "funnel-pager", "warning": "funnel-tickets"}
    # Every severity the rules use has a route.
    assert {rule["labels"]["severity"] for rule in alerts()} == set(receivers)


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_is_complete(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+m", rule["for"]), "every alert waits before firing"
    assert rule["labels"]["severity"] in ("critical", "warning")
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    runbook = ROOT / annotations["runbook_url"]
    assert runbook.is_file(), runbook
    text = runbook.read_text()
    assert text.startswith(f"# {rule['alert']}\n")
    for section in RUNBOOK_SECTIONS:
        assert section in text, (runbook.name, section)


def test_every_runbook_belongs_to_an_alert() -> None:
    used = {Path(rule["annotations"]["runbook_url"]).name for rule in alerts()}
    assert {p.name for p in (ROOT / "deploy" / "runbooks").glob("*.md")} == used


def test_runbooks_name_real_settings() -> None:
    settings = {f"FUNNEL_{name.upper()}" for name in Settings.model_fields}
    for runbook in (ROOT / "deploy" / "runbooks").glob("*.md"):
        named = set(re.findall(r"FUNNEL_[A-Z_]+", runbook.read_text()))
        assert named <= settings, (runbook.name, named - settings)


def expectations() -> dict[str, list[tuple[str, bool]]]:
    """Per alert: (test group, whether it expects the alert to fire at some point)."""
    found: dict[str, list[tuple[str, bool]]] = {}
    for path in RULE_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            fires: dict[str, bool] = {}
            for check in group.get("alert_rule_test", []):
                name = check["alertname"]
                fires[name] = fires.get(name, False) or bool(check.get("exp_alerts"))
            for name, fired in fires.items():
                found.setdefault(name, []).append((f"{path.name}: {group['name']}", fired))
    return found


@pytest.mark.parametrize("rule", alerts(), ids=lambda rule: rule["alert"])
def test_alert_has_a_firing_test_and_three_quiet_ones(rule: dict[str, Any]) -> None:
    """Fires when it should; stays quiet on a normal day, on a small site and during a blip."""
    groups = expectations().get(rule["alert"], [])
    firing = [name for name, fired in groups if fired]
    quiet = [name for name, fired in groups if not fired]
    assert firing, f"no test makes {rule['alert']} fire"
    assert len(quiet) >= 3, f"{rule['alert']} needs normal, small-site and blip tests: {quiet}"
