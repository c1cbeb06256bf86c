PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test test-slow lint format run bench docs docs-serve wheel-smoke clean figures

# MathJax, bundled into the docs site from the npm registry (pinned; npm checks the tarball's
# integrity), so that the equations render offline: no page loads anything from the network.
MATHJAX_VERSION := 3.2.2
MATHJAX := docs/javascripts/vendor/mathjax
MATHJAX_STAMP := $(MATHJAX)/.mathjax-$(MATHJAX_VERSION)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,docs]'
	touch $(STAMP)

setup: $(STAMP) $(MATHJAX_STAMP)

test: $(STAMP) $(MATHJAX_STAMP)
	$(BIN)/ruff check mupc mupc_cli.py tests benchmarks results
	$(BIN)/ruff format --check mupc mupc_cli.py tests benchmarks results
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n auto --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

lint: $(STAMP)
	$(BIN)/ruff check mupc mupc_cli.py tests benchmarks results
	$(BIN)/ruff format --check mupc mupc_cli.py tests benchmarks results
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format mupc mupc_cli.py tests benchmarks results
	$(BIN)/ruff check --fix mupc mupc_cli.py tests benchmarks results

bench: $(STAMP)
	$(BIN)/python benchmarks/train_step.py

run: $(STAMP)
	$(BIN)/python -m mupc._demo

# The documentation site (mkdocs-material, API pages from the docstrings) into site/;
# --strict turns every warning (a broken link or reference) into an error.
docs: $(STAMP) $(MATHJAX_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	$(BIN)/python -m tests.offline_site site

$(MATHJAX_STAMP):
	rm -rf build/mathjax $(MATHJAX) && mkdir -p build/mathjax $(MATHJAX)/output/chtml/fonts
	cd build/mathjax && npm pack --silent mathjax@$(MATHJAX_VERSION) > /dev/null \
		&& tar xzf mathjax-$(MATHJAX_VERSION).tgz
	cp build/mathjax/package/es5/tex-mml-chtml.js build/mathjax/package/LICENSE $(MATHJAX)/
	cp -r build/mathjax/package/es5/output/chtml/fonts/woff-v2 $(MATHJAX)/output/chtml/fonts/
	touch $@

docs-serve: $(STAMP) $(MATHJAX_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

# Build the wheel, install it into a clean venv on Python 3.13 or 3.12, run a smoke test.
wheel-smoke: $(STAMP)
	.ci/wheel-smoke

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache site build dist $(MATHJAX)

# Redraw every docs figure that has its CSV in results/ (results/figures.json lists them).
figures: $(STAMP)
	$(BIN)/python results/redraw.py
