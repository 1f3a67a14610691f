"""`funnel demo --duration 60` from a clean checkout: a live dashboard, then a non-empty report,
the marketing table and the customers summary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from streams.report.segments import SEGMENTS
from tests.integration.browser import ConsoleErrors, chromium
from tests.integration.dashboard_page import answers, wait_for

pytestmark = pytest.mark.integration


def test_demo_runs_shows_the_live_dashboard_and_ends_with_a_non_empty_report(
    tmp_path: Path,
) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "streams", "demo", "--duration", "60", "--seed", "5"],
        env={"PATH": "/usr/bin:/bin", "FUNNEL_DATA_DIR": str(tmp_path / "data")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert demo.stdout is not None
    first = demo.stdout.readline()  # printed at start, before any traffic
    url = re.fullmatch(
        r"dashboard: (http://127\.0\.0\.1:\d+/)  \(live while the demo runs\)\n", first
    )
    assert url is not None, first
    live_page_shows_traffic(url[1])
    rest, errors = demo.communicate(timeout=400)
    assert demo.returncode == 0, rest[-3000:] + errors[-3000:]
    reports = rest.split("=== report for ")[1:]
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
    marketing = rest.split("=== marketing for ")[1:]
    assert [m.split(" ", 1)[0] for m in marketing] == ["shop-1", "shop-2"]
    for table in marketing:
        google = re.search(r"^google\s+EUR\s+([\d.]+)\s", table, flags=re.MULTILINE)
        assert google, table
        assert float(google.group(1)) > 0
    customers = rest.split("=== customers of ")[1:]
    assert [c.split(" ", 1)[0] for c in customers] == ["shop-1", "shop-2"]
    for summary in customers:
        found = re.search(r"^Customers\s+([\d,]+)$", summary, flags=re.MULTILINE)
        assert found, summary
        assert int(found.group(1).replace(",", "")) > 0
        assert "champions" in summary
        # Eight weeks of returning customers before the live minute: real cohorts and repeats.
        repeat = re.search(r"^Repeat customers\s+([\d,]+)\s", summary, flags=re.MULTILINE)
        assert repeat, summary
        assert int(repeat.group(1).replace(",", "")) > 0, summary
        weeks = re.findall(r"^\d{4}-\d{2}-\d{2}\s+[\d,]+\s", summary, flags=re.MULTILINE)
        assert len(weeks) >= 4, summary
        filled = {
            name for name, n in re.findall(r"^([a-z_]+)\s+([\d,]+)\s", summary, flags=re.MULTILINE)
            if name in SEGMENTS and int(n.replace(",", ""))
        }  # fmt: skip
        assert len(filled) >= 4, summary
    # Nothing left behind without --keep.
    assert not (tmp_path / "data" / "chdb").exists()


def live_page_shows_traffic(url: str) -> None:
    """The dashboard the demo's worker serves draws the funnel while traffic flows."""
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        errors = ConsoleErrors(page)
        # Printed at start: the worker takes a few seconds more to listen.
        wait_for(lambda: answers(url.rstrip("/")), timeout=120, what="the worker's endpoint")
        page.goto(url)
        sessions = page.locator('.tiles [data-field="sessions"]')

        def counted() -> int:
            text = sessions.inner_text().replace(",", "")
            return int(text) if text.isdigit() else 0

        wait_for(lambda: counted() > 0, timeout=120, what="sessions on the page")
        first = counted()
        wait_for(lambda: counted() > first, timeout=120, what="the page to refresh itself")
        assert page.locator("#funnel-table tbody tr").count() == 4
        assert errors.seen == []
