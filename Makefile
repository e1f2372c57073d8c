# Set-up is two commands: `make serve` and `make test`. Each builds .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test test-fast lint typecheck check clean bench dashboards

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

models/half_plus_two: | $(STAMP)
	$(BIN)/python -m tfsgate.examples models/half_plus_two

serve: $(STAMP) models/half_plus_two
	$(BIN)/tfsgate serve --model_name=half_plus_two --model_base_path=models/half_plus_two

# The Kubernetes test checks the ServiceMonitor against prometheus-operator's CRD schema with
# validators from npm; installed here when npm exists (the test says so and skips otherwise).
CRD_CHECK := tests/deploy/crd/node_modules/.package-lock.json
$(CRD_CHECK): tests/deploy/crd/package.json tests/deploy/crd/package-lock.json
	npm ci --prefix tests/deploy/crd --no-audit --no-fund --loglevel=error

# CI's one command (.ci/run): the layer and type checks, then every test.
test: lint typecheck $(if $(shell command -v npm),$(CRD_CHECK))
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# The unit tests: nothing that starts tritonserver, tfsgate or worker processes, PostgreSQL or
# containers (markers in pyproject).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not triton and not process and not postgres and not docker" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy tfsgate gateway control_plane bench deploy/grafana/generate.py

check: test

# make bench: benchmarks -> docs/benchmarks.md + plots (~15 min; BENCH_QUICK=1 for a smoke run).
# BENCH_LOCK=<file>: measure under `flock <file>` so timed runs never overlap other heavy jobs.
BENCH_STAMP := $(VENV)/.bench-installed
BENCH_LOCK ?=
BENCH_ARGS ?=

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	bash bench/setup.sh
	$(if $(BENCH_LOCK),flock $(BENCH_LOCK)) $(BIN)/python -m bench.run $(BENCH_ARGS)

# Grafana dashboards and their series list, generated from deploy/grafana/generate.py.
dashboards: $(STAMP)
	$(BIN)/python deploy/grafana/generate.py

clean:
	rm -rf $(VENV) var model_repository/* models
