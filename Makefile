PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow lint format run bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
