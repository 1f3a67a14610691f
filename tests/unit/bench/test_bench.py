"""The benchmark's pure parts: medians, rates, latency attribution, and how results are shown.

No timings here: figures come from `python -m streams.bench`, never from a timed test.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from streams.bench.markdown import MARKDOWN_HEADER, markdown_row, summary_lines, targets, to_json
from streams.bench.options import PARTS, QUICK, parse_options
from streams.bench.output import append_row
from streams.bench.results import (
    BenchResults,
    Latency,
    LatencyRun,
    Machine,
    MemoryRun,
    Part,
    Run,
)
from streams.bench.stats import (
    LatencySummary,
    fifo_latencies,
    median,
    steady_rate,
    summarise_latencies,
)
from streams.bench.system import parse_cpu_model, parse_kib_field

# --- median over repetitions ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([3.0], 3.0),
        ([5.0, 1.0, 3.0], 3.0),
        ([4.0, 1.0, 3.0, 2.0], 2.5),
        ([None, 10.0, 20.0], 10.0),  # a timeout is the slowest run
        ([None, None, 20.0], None),  # a majority of timeouts: no figure
        ([None, 10.0], None),  # an even count whose middle holds a timeout
    ],
)
def test_median_of_rates_ranks_timeouts_lowest(
    values: list[float | None], expected: float | None
) -> None:
    assert median(values, higher_is_better=True) == expected


def test_median_of_latencies_ranks_timeouts_highest() -> None:
    assert median([None, 1.0, 2.0], higher_is_better=False) == 2.0
    assert median([None, None, 2.0], higher_is_better=False) is None


def test_median_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="no values"):
        median([], higher_is_better=True)


# --- steady rate -----------------------------------------------------------------------------


def test_steady_rate_starts_at_the_first_sample_past_a_tenth() -> None:
    progress = [(1.0, 0), (2.0, 50), (3.0, 200), (5.0, 600)]
    # From (3.0 s, 200 done) to 1,000 done at 11 s: 800 events in 8 s.
    assert steady_rate(progress, 1000, 11.0) == 100.0


def test_steady_rate_needs_a_qualifying_sample_and_time() -> None:
    assert steady_rate([(1.0, 10)], 1000, 2.0) is None
    assert steady_rate([(2.0, 1000)], 1000, 2.0) is None


# --- latency attribution ---------------------------------------------------------------------


def test_fifo_matches_the_kth_produced_to_the_poll_counting_k() -> None:
    produced = [3_000, 1_000, 2_000]  # sorted inside
    polls = [(1_500, 0), (2_500, 1), (4_000, 3)]
    assert fifo_latencies(produced, polls) == [1.5, 2.0, 1.0]


def test_fifo_leaves_out_what_was_never_counted_and_ignores_overcounts() -> None:
    assert fifo_latencies([1_000, 2_000], [(3_000, 1)]) == [2.0]
    assert fifo_latencies([1_000], [(3_000, 5), (4_000, 6)]) == [2.0]


def test_fifo_tolerates_a_count_that_goes_back_down() -> None:
    assert fifo_latencies([1_000, 2_000], [(3_000, 2), (4_000, 1)]) == [2.0, 1.0]


def test_percentiles_over_all_visible_events() -> None:
    latencies = [float(i) for i in range(1, 101)]
    assert summarise_latencies(latencies, 100) == LatencySummary(100, 100, 50.0, 99.0, 100.0)


def test_a_percentile_among_invisible_events_has_no_value() -> None:
    summary = summarise_latencies([1.0] * 98, 100)
    assert (summary.p50_s, summary.p99_s, summary.max_s) == (1.0, None, None)
    assert summary.visible == 98


def test_no_events_no_percentiles() -> None:
    assert summarise_latencies([], 0) == LatencySummary(0, 0, None, None, None)


def test_more_latencies_than_events_is_an_error() -> None:
    with pytest.raises(ValueError, match="more latencies"):
        summarise_latencies([1.0, 2.0], 1)


# --- result records --------------------------------------------------------------------------


def test_a_timed_out_run_has_no_rate() -> None:
    assert Run(events=100, wall_s=None).events_per_s is None
    assert Run(events=100, wall_s=4.0).events_per_s == 25.0


def test_part_medians() -> None:
    part = Part(
        "worker",
        "w",
        (
            Run(100, 1.0, 150.0, {"rss_per_open_session": 10.0}),
            Run(100, 2.0, None, {"rss_per_open_session": 30.0}),
            Run(100, None),
        ),
    )
    assert part.events_per_s == 50.0
    assert part.steady_events_per_s is None  # two of three runs have none
    assert part.figure("rss_per_open_session") == 20.0
    assert part.figure("absent") is None


# --- reporting -------------------------------------------------------------------------------

MACHINE = Machine(
    cores=2,
    cpu_model="AMD EPYC",
    memory_bytes=24 * 2**30,
    python="Python 3.11.7",
    platform="Linux",
    versions={"orjson": "3.13.0"},
)


def _results(*, worker_wall: float | None = 20.0, p99: float | None = 1.5) -> BenchResults:
    def part(key: str, wall: float | None) -> Part:
        return Part(key, key, (Run(100_000, wall),))

    worker = Part(
        "worker",
        "worker",
        (Run(100_000, worker_wall, extra={"rss_growth_per_open_session": 900.0}),),
    )
    latency = LatencyRun(
        rate=5_000.0,
        achieved_rate=4_990.0,
        sent=100_000,
        summary=LatencySummary(30_000, 30_000, 1.2, p99, 3.0),
        polls=80,
    )
    return BenchResults(
        started_at="2026-11-24T10:15:00+00:00",
        commit="abc1234",
        machine=MACHINE,
        options={"events": 100_000, "quick": False},
        parts=(part("baseline", 1.0), part("decode", 2.0), part("engine", 4.0), worker),
        latency=Latency((latency,)),
        memory=(MemoryRun("pending", 1000, 800_000, 300_000, 26_000),),
    )


def test_markdown_row_has_every_column_of_the_header() -> None:
    row = markdown_row(_results())
    header = MARKDOWN_HEADER.splitlines()[0]
    assert row.count("|") == header.count("|")
    assert row == (
        "| 2026-11-24 10:15 | abc1234 | 2 x AMD EPYC, 24 GiB | 100,000 | 100,000 | 50,000 "
        "| 25,000 | — | 5,000 (0.050x) | — | — | 1.20 / 1.50 / 3.00 @ 5,000/s | 800 B; 900 B |\n"
    )


def test_markdown_row_gives_the_mixed_key_worker_beside_the_keyed_one() -> None:
    keyed = _results()
    mixed = Part("mixed", "mixed", (Run(100_000, 25.0),))  # 4,000 ev/s against 5,000
    row = markdown_row(dataclasses.replace(keyed, parts=(*keyed.parts, mixed)))
    assert "| 5,000 (0.050x) | 4,000 (0.80x) |" in row


def test_markdown_row_gives_two_workers_against_the_baseline() -> None:
    one = _results()
    two = Part("workers2", "two workers", (Run(100_000, 12.5),))  # 8,000 ev/s against 100,000
    row = markdown_row(dataclasses.replace(one, parts=(*one.parts, two)))
    assert "| 5,000 (0.050x) | — | 8,000 (0.080x) |" in row


def test_markdown_row_says_timed_out_and_not_visible() -> None:
    row = markdown_row(_results(worker_wall=None, p99=None))
    assert "| timed out |" in row
    assert "1.20 / n/v / 3.00" in row


def test_targets_are_judged_not_asserted() -> None:
    verdicts = {t.name: t.met for t in targets(_results())}
    assert verdicts == {
        "worker throughput": False,  # 5,000 < 50,000 ev/s
        "worker / baseline": False,  # 0.05x < 0.25x
        "p99 produce -> ClickHouse": True,
        "RSS per open session (pending, 1,000 sessions)": True,  # 800 B <= 1 KiB
    }


def test_latency_target_applies_only_at_its_rate() -> None:
    results = _results()
    assert results.latency is not None
    runs = tuple(replace(r, rate=1_000.0) for r in results.latency.runs)
    other_rate = replace(results, latency=Latency(runs))
    [latency_target] = [t for t in targets(other_rate) if t.name.startswith("p99")]
    assert latency_target.met is None
    assert latency_target.measured == "1.50 s at 1,000 ev/s"


def test_json_carries_medians_and_targets() -> None:
    doc = orjson.loads(to_json(_results()))
    assert doc["parts"][0]["median_events_per_s"] == 100_000.0
    assert doc["parts"][3]["runs"][0]["events_per_s"] == 5_000.0
    assert doc["latency"]["median"] == {"p50_s": 1.2, "p99_s": 1.5, "max_s": 3.0}
    assert doc["memory"][0]["rss_bytes_per_session"] == 800.0
    assert math.isclose(doc["worker_over_baseline"], 0.05)
    assert doc["machine"]["cores"] == 2
    assert {t["name"] for t in doc["targets"]} >= {"worker throughput", "worker / baseline"}


def test_summary_names_each_verdict() -> None:
    text = "\n".join(summary_lines(_results()))
    assert "worker throughput: 5,000 ev/s (goal >= 50,000 ev/s) MISSED" in text
    assert "p99 produce -> ClickHouse: 1.50 s at 5,000 ev/s (goal <= 2 s at 5,000 ev/s) met" in text


def test_unmeasured_parts_are_not_judged() -> None:
    empty = BenchResults(
        started_at="2026-11-24T10:15:00+00:00",
        commit=None,
        machine=MACHINE,
        options={"events": 10},
        parts=(),
        latency=None,
        memory=(),
    )
    assert {t.met for t in targets(empty)} == {None}
    assert markdown_row(empty).count("—") == 12  # the event count too: no part read the topic


# --- output file -----------------------------------------------------------------------------


def test_append_row_creates_the_table_then_appends(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    append_row(path, "| a |\n")
    append_row(path, "| b |\n")
    assert path.read_text() == f"# Benchmarks\n\n{MARKDOWN_HEADER}| a |\n| b |\n"


def test_append_row_ends_an_unterminated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("intro")
    append_row(path, "| a |\n")
    assert path.read_text() == "intro\n| a |\n"


# --- machine facts ---------------------------------------------------------------------------


def test_parse_kib_field() -> None:
    status = "Name:\tpython\nVmRSS:\t  12345 kB\nThreads:\t3\n"
    assert parse_kib_field(status, "VmRSS") == 12345 * 1024
    with pytest.raises(ValueError, match="no VmHWM"):
        parse_kib_field(status, "VmHWM")


def test_parse_cpu_model() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B12\n"
    assert parse_cpu_model(cpuinfo) == "AMD EPYC 7B12"


# --- options ---------------------------------------------------------------------------------


def test_quick_preset_and_overrides() -> None:
    options = parse_options(["--quick", "--events", "5000", "--parts", "baseline, worker"])
    assert options.quick
    assert options.events == 5000
    assert options.sessions == QUICK.sessions
    assert options.latency_seconds == QUICK.latency_seconds
    assert options.parts == ("baseline", "worker")


def test_defaults_are_the_issue_sizes() -> None:
    options = parse_options([])
    assert (options.events, options.repeat, options.rate) == (1_000_000, 3, 5_000.0)
    assert options.latency_seconds == 60.0
    assert options.sessions == 1_000_000
    assert options.parts == PARTS


@pytest.mark.parametrize("argv", [["--parts", "turbo"], ["--repeat", "0"], ["--rate", "-1"]])
def test_bad_options_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_options(argv)
    assert exit_info.value.code == 2


def test_summary_gives_the_cpu_cost_of_unkeyed_traffic() -> None:
    keyed = Part("worker", "worker", (Run(100_000, 20.0, extra={"cpu_us_per_event": 400.0}),))
    mixed = Part("mixed", "mixed", (Run(100_000, 25.0, extra={"cpu_us_per_event": 500.0}),))
    results = dataclasses.replace(_results(), parts=(keyed, mixed))
    assert "  30 % unkeyed / keyed: 1.25x CPU per event" in summary_lines(results)
    assert orjson.loads(to_json(results))["mixed_cpu_over_keyed"] == 1.25
