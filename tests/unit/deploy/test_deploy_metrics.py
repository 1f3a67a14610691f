"""PromQL in the rules and dashboards names only series that exist.

A typo in a metric name still parses and still passes a rule test written with the same typo;
it only shows in production as an alert that can never fire. So every name is checked against
what the worker registers and what the rules record.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import CollectorRegistry

from deploy.grafana.dashgen.build import DASHBOARDS
from deploy.grafana.dashgen.model import PromQL
from sinks.batch import SinkMetrics
from streams.funnel.conversion import RollingConversion
from streams.funnel.facts import CartStatus, Stage
from streams.worker.funnel_metrics import FunnelMetrics, SiteLabels, _window_label
from streams.worker.ingest_metrics import Metrics
from streams.worker.repartition import RepartitionMetrics

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "prometheus" / "rules" / "funnel.rules.yml"
# Ours are funnel_*; recorded ones are level:metric:operations; `up` comes from Prometheus.
_SERIES = re.compile(r"(?<![\w:])(funnel_\w+|\w*:\w+:\w+|up)(?![\w:(])")
_STRINGS_AND_MATCHERS = re.compile(r'"[^"]*"|\{[^}]*\}')
_MATCHER = re.compile(r'(\w+)\s*=~?\s*"([^"]*)"')


def exported() -> set[str]:
    """Every series name the worker's metric bundles can expose."""
    registry = CollectorRegistry()
    Metrics.create(registry)
    FunnelMetrics.create(registry, sites=SiteLabels(1), lateness_ms=0)
    SinkMetrics.create(registry)
    RepartitionMetrics.create(registry)
    names = set()
    for family in registry.collect():
        match family.type:
            case "counter":
                names.add(f"{family.name}_total")
            case "histogram":
                names |= {f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
            case _:
                names.add(family.name)
    return names


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def recorded() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def series_in(expr: str) -> set[str]:
    return set(_SERIES.findall(_STRINGS_AND_MATCHERS.sub("", expr)))


def series_in_templates(text: str) -> set[str]:
    """Alert templates query PromQL written as Go raw strings: `...`."""
    return {name for query in re.findall(r"`([^`]*)`", text) for name in series_in(query)}


def test_series_extraction() -> None:
    expr = (
        'sum by (job) (rate(funnel_x_total{a="b:c:d"}[5m])) / job:funnel_y:rate5m and up{job="w"}'
    )
    assert series_in(expr) == {"funnel_x_total", "job:funnel_y:rate5m", "up"}
    template = "{{ with printf `a:funnel_z:ratio{site=%q}` $labels.site | query }}{{ end }}"
    assert series_in_templates(template) == {"a:funnel_z:ratio"}


def test_the_worker_exports_what_the_brief_promised() -> None:
    assert {
        "funnel_rolling_stage_sessions",
        "funnel_watermark_seconds",
        "funnel_processing_delay_seconds_bucket",
        "funnel_sink_errors_total",
        "funnel_events_consumed_total",
    } <= exported()


def test_rules_use_only_real_series() -> None:
    known = exported() | recorded() | {"up"}
    for rule in rules():
        templates = " ".join(rule.get("annotations", {}).values())
        used = series_in(rule["expr"]) | series_in_templates(templates)
        assert used, rule
        assert used <= known, (rule.get("alert") or rule.get("record"), used - known)


def test_dashboards_use_only_real_series() -> None:
    known = exported() | recorded() | {"up"}
    for build in DASHBOARDS.values():
        for panel in build().panels():
            for query in panel.queries:
                if isinstance(query, PromQL):
                    used = series_in(query.expr)
                    assert used, panel.title
                    assert used <= known, (panel.title, used - known)


def label_values() -> dict[str, set[str]]:
    """The values the worker (and the rules' own `labels:`) can put on each matched label."""
    steps = {rule["labels"]["step"] for rule in rules() if "record" in rule and "labels" in rule}
    return {
        "stage": {stage.name.lower() for stage in Stage},
        "window": {_window_label(span) for span in RollingConversion().spans_ms},
        "status": {status.name.lower() for status in CartStatus},
        "step": steps,
        "job": {"funnel-worker"},  # deploy/prometheus/prometheus.yml
        "site": {"${site}"},  # the dashboards' variable
        "retriable": {"true", "false"},  # sinks/batch.py: str(bool).lower()
    }


def test_label_matchers_use_values_that_exist() -> None:
    exprs = [rule["expr"] for rule in rules()]
    exprs += [
        query.expr
        for build in DASHBOARDS.values()
        for panel in build().panels()
        for query in panel.queries
        if isinstance(query, PromQL)
    ]
    allowed = label_values()
    matched = 0
    for expr in exprs:
        for label, pattern in _MATCHER.findall(expr):
            assert label in allowed, (label, expr)
            assert set(pattern.split("|")) <= allowed[label], (label, pattern)
            matched += 1
    assert matched > 10
