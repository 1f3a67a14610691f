"""Ad spend that matches the simulated traffic: clicks are a channel's sessions, cost their CPC.

`SpendTally` watches the messages the simulator sends and counts, per site, UTC day and paid
channel, the distinct sessions that landed (page views); `spend_lines` turns them into the spend
CSV `funnel spend import` reads, one file per day with a line per site and channel.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import orjson

from schemas.decode import Rejection
from schemas.spend import SpendRow, decode_spend
from streams.sim.generator import SimulatedMessage, generate
from streams.sim.traffic import SimulationConfig

HEADER = ("date", "site_id", "utm_source", "utm_campaign", "cost", "currency", "clicks")
_CENT = Decimal("0.01")


class SpendTally:
    def __init__(self, config: SimulationConfig) -> None:
        self._config = config
        self._cpc = {c.utm_source: Decimal(c.cost_per_click) for c in config.channels}
        self._sessions: dict[tuple[str, date, str, str], set[str]] = {}

    def observe(self, batch: Sequence[SimulatedMessage]) -> None:
        """Count the landing sessions of paid channels among valid, first deliveries."""
        for message in batch:
            if not message.valid or message.duplicate:
                continue
            event = orjson.loads(message.value)
            source = event.get("utm_source", "")
            if event["event_type"] != "page_view" or not self._cpc.get(source):
                continue
            key = (event["site_id"], _day(event["occurred_at"]), source,
                   event.get("utm_campaign", ""))  # fmt: skip
            self._sessions.setdefault(key, set()).add(event["session_id"])

    def spend_lines(self) -> dict[date, list[tuple[str, ...]]]:
        """CSV lines (after the header) per UTC day, sorted."""
        days: dict[date, list[tuple[str, ...]]] = {}
        for (site, day, source, campaign), sessions in sorted(self._sessions.items()):
            cost = (self._cpc[source] * len(sessions)).quantize(_CENT)
            line = (day.isoformat(), site, source, campaign, str(cost),
                    self._config.currency, str(len(sessions)))  # fmt: skip
            days.setdefault(day, []).append(line)
        return days

    def spend_rows(self) -> list[SpendRow]:
        """The rows the CSVs hold, as `funnel spend import` reads them."""
        rows = []
        for lines in self.spend_lines().values():
            for line in lines:
                row = decode_spend(dict(zip(HEADER, line, strict=True)), ingested_at_ms=0)
                if isinstance(row, Rejection):  # the tally only writes valid lines
                    raise AssertionError(row.detail)
                rows.append(row)
        return rows

    def write_csvs(self, directory: Path) -> list[Path]:
        """One `spend-YYYY-MM-DD.csv` per day; returns the files written."""
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for day, lines in self.spend_lines().items():
            path = directory / f"spend-{day.isoformat()}.csv"
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.writer(out)
                writer.writerow(HEADER)
                writer.writerows(lines)
            written.append(path)
        return written


def simulated_spend(config: SimulationConfig) -> list[SpendRow]:
    """The spend matching everything `config` simulates (a whole run, at once)."""
    tally = SpendTally(config)
    tally.observe(list(generate(config)))
    return tally.spend_rows()


def _day(occurred_at: int | str) -> date:
    if isinstance(occurred_at, int):
        return datetime.fromtimestamp(occurred_at / 1000, tz=UTC).date()
    return datetime.fromisoformat(occurred_at).astimezone(UTC).date()
