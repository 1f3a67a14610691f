"""The generated Grafana dashboards: committed JSON is current, well-formed, and its PromQL parses.

The ClickHouse queries are run for real in tests/integration/test_dashboards.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.grafana.dashgen.build import DASHBOARDS, OUT_DIR, main, panel_list, render
from deploy.grafana.dashgen.model import Column, Kind, PromQL, Sql

ROOT = Path(__file__).resolve().parents[3]
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
# Values for Grafana's own variables in PromQL, as Grafana would substitute them.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "${site}": "shop-1"}


def dashboards() -> dict[str, dict[str, Any]]:
    return {name: build().to_json() for name, build in DASHBOARDS.items()}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_committed_json_is_what_the_code_generates() -> None:
    stale = [
        name
        for name, build in DASHBOARDS.items()
        if (OUT_DIR / f"{name}.json").read_text(encoding="utf-8") != render(build())
    ]
    assert not stale, f"regenerate with `python -m deploy.grafana.dashgen`: {stale}"
    assert {p.stem for p in OUT_DIR.glob("*.json")} == set(DASHBOARDS)


def test_main_writes_the_files(tmp_path: Path) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    for name in DASHBOARDS:
        assert (tmp_path / f"{name}.json").read_text(encoding="utf-8") == (
            OUT_DIR / f"{name}.json"
        ).read_text(encoding="utf-8")


def test_dashboards_are_well_formed() -> None:
    uids = set()
    for name, dashboard in dashboards().items():
        uids.add(dashboard["uid"])
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
            cell_range = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & cell_range, ("panels overlap", name, panel["title"])
            cells |= cell_range
        for panel in panels(dashboard):
            assert panel["description"], (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
    assert len(uids) == len(DASHBOARDS)


def test_panels_use_the_provisioned_datasources() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "datasources.yml").read_text())[
        "datasources"
    ]
    by_uid = {d["uid"]: d["type"] for d in provisioned}
    for dashboard in dashboards().values():
        variables = dashboard["templating"]["list"]
        sources = [p["datasource"] for p in panels(dashboard)]
        sources += [t["datasource"] for p in panels(dashboard) for t in p["targets"]]
        sources += [v["datasource"] for v in variables if "datasource" in v]
        for source in sources:
            assert by_uid.get(source["uid"]) == source["type"], source


def test_panels_use_only_defined_variables() -> None:
    for name, dashboard in dashboards().items():
        defined = {v["name"] for v in dashboard["templating"]["list"]}
        text = json.dumps(panels(dashboard))
        used = set(re.findall(r"\$\{(\w+)\}", text))
        assert used <= defined, (name, used - defined)


def test_time_series_queries_lead_with_a_time_column() -> None:
    for build in DASHBOARDS.values():
        for panel in build().panels():
            for query in panel.queries:
                if isinstance(query, Sql):
                    names = [c.name for c in query.columns]
                    assert len(names) == len(set(names)), panel.title
                    if query.time_series:
                        # The plugin's time-series format looks the field up by this name.
                        assert query.columns[0] == Column("time", Kind.TIME), panel.title
                    assert panel.kind != "timeseries" or query.time_series, panel.title


def test_every_promql_expression_parses(tmp_path: Path) -> None:
    """promtool parses each expression offline, as a recording rule of a throwaway rules file."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: apt-get install prometheus")
    expressions = []
    for build in DASHBOARDS.values():
        for panel in build().panels():
            for query in panel.queries:
                if isinstance(query, PromQL):
                    expr = query.expr
                    for variable, value in GRAFANA_VARIABLES.items():
                        expr = expr.replace(variable, value)
                    assert "$" not in expr, f"unknown Grafana variable in {panel.title}: {expr}"
                    expressions.append(expr)
    assert expressions
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:expr_{i}:check", "expr": e}
                    for i, e in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in done.stdout


def test_the_deploy_readme_lists_the_current_panels() -> None:
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert panel_list() in readme, (
        "paste `python -m deploy.grafana.dashgen --panels` into deploy/README.md"
    )
