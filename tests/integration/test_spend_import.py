"""`funnel spend import` on the real engine: all or nothing, idempotent, clear line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from tests.integration.pipeline import query

pytestmark = pytest.mark.integration

GOOD = [
    "2026-03-01,shop,Google,bf,10.50,EUR,3",
    "2026-03-01,shop,facebook,,7,USD,",
    "2026-03-02,shop,google,bf,4.25,EUR,1",
]
BAD = {
    3: ("2026-03-01,shop,google,bf,10,ZZZ,1", "unknown currency 'ZZZ'"),
    5: ("2026-03-01,shop,google,bf,-3,EUR,1", "negative cost -3"),
    6: ("2026-02-30,shop,google,bf,3,EUR,1", "bad date '2026-02-30'"),
    7: ("2026-03-01,shop,,bf,3,EUR,1", "missing utm_source"),
}
HEADER = "date,site_id,utm_source,utm_campaign,cost,currency,clicks"


def run_import(data_dir: Path, csv: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FUNNEL_DATA_DIR": str(data_dir), "FUNNEL_CLICKHOUSE_DSN": ""}
    return subprocess.run(
        [sys.executable, "-m", "streams", "spend", "import", str(csv), *extra],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def stored(data_dir: Path) -> list[tuple[object, ...]]:
    return query(
        data_dir,
        "SELECT day, utm_source, utm_campaign, currency, toString(argMax(cost, updated_at)),"
        " argMax(clicks, updated_at) FROM funnel.ad_spend GROUP BY ALL ORDER BY ALL",
    )


def test_a_file_with_errors_stores_nothing_unless_told_and_imports_are_idempotent(
    tmp_path: Path,
) -> None:
    lines = [HEADER, GOOD[0], BAD[3][0], GOOD[1], BAD[5][0], BAD[6][0], BAD[7][0], GOOD[2]]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join(lines) + "\n")
    data_dir = tmp_path / "data"

    refused = run_import(data_dir, mixed)
    assert refused.returncode == 1
    for line, (_, reason) in BAD.items():
        assert f"{mixed}:{line}: {reason}" in refused.stderr, refused.stderr
    assert "nothing imported" in refused.stderr
    assert not (data_dir / "chdb").exists()  # not even opened

    good = tmp_path / "good.csv"
    good.write_text("\n".join([HEADER, *GOOD]) + "\n")
    first = run_import(data_dir, good)
    assert first.returncode == 0, first.stderr
    once = stored(data_dir)
    assert once == [
        (date(2026, 3, 1), "facebook", "", "USD", "7", 0),
        (date(2026, 3, 1), "google", "bf", "EUR", "10.5", 3),  # "Google" normalised
        (date(2026, 3, 2), "google", "bf", "EUR", "4.25", 1),
    ]
    for _ in range(2):
        assert run_import(data_dir, good).returncode == 0
    assert stored(data_dir) == once

    # Told to skip: the good lines land (the same values again), the bad ones are listed.
    skipped = run_import(data_dir, mixed, "--skip-invalid")
    assert skipped.returncode == 0, skipped.stderr
    for line, (_, reason) in BAD.items():
        assert f"skipped {mixed}:{line}: {reason}" in skipped.stderr
    assert "imported 3 spend rows, skipped 4" in skipped.stderr
    assert stored(data_dir) == once
