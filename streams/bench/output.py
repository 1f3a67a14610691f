"""Where results go: a JSON file per run, and a row at the end of BENCHMARKS.md."""

from __future__ import annotations

from pathlib import Path

from streams.bench.markdown import MARKDOWN_HEADER, markdown_row, to_json
from streams.bench.results import BenchResults


def write_outputs(results: BenchResults, out_dir: Path, markdown: Path) -> Path:
    """Write `<out_dir>/<start time>.json`, append the row; returns the JSON's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = results.started_at.replace("-", "").replace(":", "").replace("+0000", "Z")
    path = out_dir / f"{stamp}.json"
    path.write_bytes(to_json(results))
    append_row(markdown, markdown_row(results))
    return path


def append_row(markdown: Path, row: str) -> None:
    """Append to the results table, which is the last thing in the file (made if missing)."""
    text = markdown.read_text() if markdown.exists() else f"# Benchmarks\n\n{MARKDOWN_HEADER}"
    if not text.endswith("\n"):
        text += "\n"
    markdown.write_text(text + row)
