"""Write the dashboards' JSON (what Grafana provisions) and list their panels for the README.

python -m deploy.grafana.dashgen            # rewrite deploy/grafana/dashboards/*.json
python -m deploy.grafana.dashgen --panels   # print the panel list as Markdown
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from deploy.grafana.dashgen import breakdowns, customers, marketing, operations, overview
from deploy.grafana.dashgen.model import Dashboard

OUT_DIR = Path(__file__).resolve().parent.parent / "dashboards"

# File name (without .json) -> dashboard.
DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    "funnel-overview": overview.dashboard,
    "funnel-breakdowns": breakdowns.dashboard,
    "operations": operations.dashboard,
    "marketing": marketing.dashboard,
    "customers": customers.dashboard,
}


def render(dashboard: Dashboard) -> str:
    """Stable JSON text: sorted keys and a final newline, so regenerating is a no-op diff."""
    return json.dumps(dashboard.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def panel_list() -> str:
    lines = []
    for build in DASHBOARDS.values():
        dashboard = build()
        lines += [f"### {dashboard.title}", "", dashboard.description, ""]
        for row in dashboard.rows:
            for panel in row.panels:
                lines.append(f"- **{row.title} / {panel.title}**: {panel.description}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.grafana.dashgen")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="directory for the JSON files")
    parser.add_argument("--panels", action="store_true", help="print the panel list and exit")
    args = parser.parse_args(argv)
    if args.panels:
        sys.stdout.write(panel_list())
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, build in DASHBOARDS.items():
        (args.out / f"{name}.json").write_text(render(build()), encoding="utf-8")
    return 0
