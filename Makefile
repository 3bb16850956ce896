# Two commands for a newcomer: `make run` and `make test`. Both build .venv from scratch
# when it is missing, so a fresh clone needs nothing installed by hand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# setuptools warns about every editable install; the warning is not for our users.
PIP := PYTHONWARNINGS=ignore $(BIN)/python -m pip
QUICKSTART := examples/configs/quickstart.yaml

.PHONY: run test test-fast lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# A stamp per install flavour: reinstall when pyproject.toml changes.
# Bytecode is compiled at install, so the first `tradeops` run does not pay for it.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e .
	$(BIN)/python -m compileall -q tradeops recipes
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q tradeops recipes
	touch $@ $(VENV)/.installed-run

# Runs the quickstart desk in the foreground against a simulated exchange; Ctrl-C stops it.
run: $(VENV)/.installed-run
	$(BIN)/tradeops up $(QUICKSTART)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check tradeops recipes tests benchmarks

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict tradeops

# The tests come in two tiers (README.md, "Tests"):
# - `make test` is the whole suite, what CI runs: ruff, mypy --strict, then every test,
#   including the `e2e` ones that start real processes and servers (the sim, gateways, the
#   proxy, whole desks through the CLI), in two pytest-xdist workers: most of an end-to-end
#   test is waiting for processes and ticks, so two at a time halve the wall time on two
#   cores (about four minutes here). Every test is independent: its own run dir, shared-memory
#   namespace and ports. PYTEST_WORKERS=0 runs it in one process.
# - `make test-fast` is the edit loop: only the tests not marked `e2e`, the sans-I/O and
#   single-process ones. Under 60 s of pytest on two cores (today ~6 s); it runs no lint or
#   typecheck, so run `make lint typecheck` before pushing. A test that starts a process or a
#   TCP server without the `e2e` mark fails (tests/conftest.py), so the fast tier cannot
#   slow down unnoticed.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS)

test: lint typecheck pytest

test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -q -m "not e2e"

# Every benchmark, one after the other (about 12 minutes); each rewrites its section of
# benchmarks/RESULTS.md and says PASS or the measured gap for each of its targets. The
# machines are shared: compare ratios within one run. `make bench BENCH=bus` runs one.
BENCH ?= *
bench: $(VENV)/.installed-dev
	for b in benchmarks/$(BENCH)_bench.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
