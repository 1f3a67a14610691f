"""docker-compose.yml and deploy/Dockerfile, checked offline against the code they run.

Docker doesn't run here, so this proves what can be proven without it: the file parses, every
mounted file exists, every FUNNEL_* variable is a real setting with a valid value, every
command is one the CLI accepts, and the ports and paths the services share agree.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from setuptools.config.pyprojecttoml import read_configuration  # type: ignore[import-untyped]  # no stubs

from streams.cli import build_parser
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
FUNNEL_SERVICES = ("migrate", "worker", "simulator")
EXPECTED_SERVICES = {
    "kafka",
    "clickhouse",
    "prometheus",
    "alertmanager",
    "grafana",
    *FUNNEL_SERVICES,
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) per line, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split()[0].upper(), line.split(maxsplit=1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def bind_mounts() -> list[tuple[str, str, str]]:
    """(service, host path, container path) of every ./ volume."""
    mounts = []
    for name, service in services().items():
        for volume in service.get("volumes", []):
            host, container, *_ = volume.split(":")
            if host.startswith("."):
                mounts.append((name, host, container))
    return mounts


def container_path(service: str, host: str) -> str:
    return next(c for s, h, c in bind_mounts() if s == service and h == host)


def test_compose_has_the_whole_stack() -> None:
    assert set(services()) == EXPECTED_SERVICES
    assert "GF_INSTALL_PLUGINS" in services()["grafana"]["environment"]
    assert (
        "grafana-clickhouse-datasource"
        in services()["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    )
    kraft = services()["kafka"]["environment"]
    assert "controller" in kraft["KAFKA_PROCESS_ROLES"], "Kafka runs in KRaft mode, no ZooKeeper"


def test_every_mounted_file_exists() -> None:
    assert bind_mounts()
    for service, host, _ in bind_mounts():
        assert (ROOT / host).exists(), (service, host)
    for name in FUNNEL_SERVICES:
        build = services()[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_dependencies_are_services() -> None:
    for name, service in services().items():
        assert set(service.get("depends_on", {})) <= set(services()), name


def funnel_environments() -> list[tuple[str, dict[str, str]]]:
    return [
        (name, s.get("environment", {}))
        for name, s in services().items()
        if any(k.startswith("FUNNEL_") for k in s.get("environment", {}))
    ]


def test_every_funnel_variable_is_a_setting_with_a_valid_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert {name for name, _ in funnel_environments()} == set(FUNNEL_SERVICES)
    dockerfile_env = dict(
        re.findall(r"(FUNNEL_\w+)=(\S+)", " ".join(a for i, a in dockerfile() if i == "ENV"))
    )
    fields = {f"FUNNEL_{name.upper()}" for name in Settings.model_fields}
    for name, environment in [*funnel_environments(), ("Dockerfile", dockerfile_env)]:
        assert set(environment) <= fields, (name, set(environment) - fields)
        # Exactly what the container sees: the image's ENV, then the service's environment.
        for key in [k for k in os.environ if k.startswith("FUNNEL_")]:
            monkeypatch.delenv(key)
        for key, value in {**dockerfile_env, **environment}.items():
            monkeypatch.setenv(key, str(value))
        Settings()


def test_commands_are_ones_the_cli_accepts() -> None:
    entrypoint = next(json.loads(a) for i, a in dockerfile() if i == "ENTRYPOINT")
    default = next(json.loads(a) for i, a in dockerfile() if i == "CMD")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["funnel"]
    assert scripts["funnel"] == "streams.cli:main"
    assert default == ["worker"]
    parser = build_parser()
    parser.parse_args(default)
    commands = {name: services()[name]["command"] for name in FUNNEL_SERVICES}
    assert commands["worker"] == ["worker"]
    assert commands["migrate"] == ["migrate"]
    for command in commands.values():
        parser.parse_args(command)


def test_prometheus_scrapes_the_workers_on_their_metrics_port() -> None:
    worker = services()["worker"]
    port = int(
        worker["environment"].get(
            "FUNNEL_METRICS_PORT", Settings.model_fields["metrics_port"].default
        )
    )
    assert str(port) in [str(p) for p in worker["expose"]]
    exposed = [a for i, a in dockerfile() if i == "EXPOSE"]
    assert exposed == [str(port)]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "funnel-worker")
    (discovery,) = job["dns_sd_configs"]
    assert discovery["names"] == ["worker"]
    assert discovery["port"] == port
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager == "alertmanager:9093"
    assert "9093:9093" in services()["alertmanager"]["ports"]


def test_prometheus_loads_the_mounted_rules() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    mounted = container_path("prometheus", "./deploy/prometheus/rules")
    assert (
        container_path("prometheus", "./deploy/prometheus/prometheus.yml")
        == "/etc/prometheus/prometheus.yml"
    )
    (pattern,) = config["rule_files"]
    assert pattern == f"{mounted}/*.rules.yml"
    assert list((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))


def test_grafana_provisioning_points_at_the_mounts_and_services() -> None:
    grafana = services()["grafana"]
    assert container_path("grafana", "./deploy/grafana/provisioning") == "/etc/grafana/provisioning"
    dashboards_dir = container_path("grafana", "./deploy/grafana/dashboards")
    provisioning = ROOT / "deploy" / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "dashboards.yml").read_text())[
        "providers"
    ]
    assert provider["options"]["path"] == dashboards_dir
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy" / "grafana" / "dashboards" / Path(home).name).is_file()
    assert home.startswith(dashboards_dir)
    sources = yaml.safe_load((provisioning / "datasources" / "datasources.yml").read_text())[
        "datasources"
    ]
    by_uid = {s["uid"]: s for s in sources}
    assert urlsplit(by_uid["prometheus"]["url"]).hostname == "prometheus"
    clickhouse = by_uid["clickhouse"]["jsonData"]
    assert clickhouse["host"] == "clickhouse"
    assert f"{clickhouse['port']}:{clickhouse['port']}" in services()["clickhouse"]["ports"]
    # The provisioning file reads its credentials from Grafana's environment.
    text = (provisioning / "datasources" / "datasources.yml").read_text()
    for variable in re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text):
        assert variable in grafana["environment"], variable


def test_everything_uses_the_one_clickhouse_database() -> None:
    environment = services()["worker"]["environment"]
    database = urlsplit(environment["FUNNEL_CLICKHOUSE_DSN"]).path.strip("/")
    assert database == Settings.model_fields["clickhouse_database"].default == "funnel"
    assert services()["clickhouse"]["environment"]["CLICKHOUSE_DB"] == database
    assert (
        environment["FUNNEL_CLICKHOUSE_USER"]
        == services()["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    )
    sources = yaml.safe_load(
        (
            ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
        ).read_text()
    )
    clickhouse = next(s for s in sources["datasources"] if s["uid"] == "clickhouse")
    assert clickhouse["jsonData"]["defaultDatabase"] == database
    # The dashboards' SQL names its tables as funnel.<table>.
    for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"):
        assert set(re.findall(r"FROM (\w+)\.", path.read_text())) == {database}, path.name


def test_the_image_copies_files_that_exist() -> None:
    for instruction, arguments in dockerfile():
        if instruction == "COPY":
            *sources, _ = arguments.split()
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: missing (pip install . needs it)"


def test_pip_install_ships_every_package_and_the_migrations() -> None:
    """The image runs `pip install .`, not an editable install: subpackages and SQL must be in it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # setuptools' own deprecation notices
        config = read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"]
    packages = set(config["packages"])
    for top in ("schemas", "streams", "sinks"):
        for init in (ROOT / top).rglob("__init__.py"):
            package = ".".join(init.parent.relative_to(ROOT).parts)
            assert package in packages, f"{package} would be missing from the image"
    assert "*.sql" in config.get("package-data", {}).get("sinks.migrations", []), (
        "migrations would be missing"
    )


def test_the_deploy_readme_names_real_settings() -> None:
    fields = {f"FUNNEL_{name.upper()}" for name in Settings.model_fields}
    named = set(re.findall(r"FUNNEL_[A-Z_]+", (ROOT / "deploy" / "README.md").read_text()))
    assert named <= fields, named - fields
