PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow lint format run bench docs docs-serve wheel-smoke clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(STAMP)

setup: $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check mupc tests benchmarks
	$(BIN)/ruff format --check mupc tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check mupc tests benchmarks
	$(BIN)/ruff format --check mupc tests benchmarks
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format mupc tests benchmarks
	$(BIN)/ruff check --fix mupc tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/train_step.py

run: $(STAMP)
	$(BIN)/python -m mupc._demo

# The documentation site (mkdocs-material, API pages from the docstrings) into site/;
# --strict turns every warning (a broken link or reference) into an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Build the wheel, install it into a clean venv on Python 3.13 or 3.12, run a smoke test.
wheel-smoke: $(STAMP)
	.ci/wheel-smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache site build dist
