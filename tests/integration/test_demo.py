"""`funnel demo --duration 60` from a clean checkout prints a non-empty report and marketing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_and_ends_with_a_non_empty_report(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streams", "demo", "--duration", "60", "--seed", "5"],
        env={"PATH": "/usr/bin:/bin", "FUNNEL_DATA_DIR": str(tmp_path / "data")},
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    reports = done.stdout.split("=== report for ")[1:]
    assert [r.split(",", 1)[0] for r in reports] == ["shop-1", "shop-2"]
    for report in reports:
        sessions = {
            stage: int(count.replace(",", ""))
            for stage, count in re.findall(r"^(\w+)\s+([\d,]+)\s", report, flags=re.MULTILINE)
            if stage in {"page_view", "add_to_cart", "checkout", "purchase"}
        }
        assert sessions["page_view"] > 1000
        assert sessions["page_view"] >= sessions["add_to_cart"] >= sessions["checkout"] > 0
        assert re.search(r"^Orders\s+[1-9]", report, flags=re.MULTILINE)
    # Then the marketing table of each site, with the simulated spend imported.
    marketing = done.stdout.split("=== marketing for ")[1:]
    assert [m.split(" ", 1)[0] for m in marketing] == ["shop-1", "shop-2"]
    for table in marketing:
        google = re.search(r"^google\s+EUR\s+([\d.]+)\s", table, flags=re.MULTILINE)
        assert google, table
        assert float(google.group(1)) > 0
    customers = done.stdout.split("=== customers of ")[1:]
    assert [c.split(" ", 1)[0] for c in customers] == ["shop-1", "shop-2"]
    for summary in customers:
        found = re.search(r"^Customers\s+([\d,]+)$", summary, flags=re.MULTILINE)
        assert found, summary
        assert int(found.group(1).replace(",", "")) > 0
        assert "champions" in summary
    # Nothing left behind without --keep.
    assert not (tmp_path / "data" / "chdb").exists()
