# The two commands (see README):  make demo   |   make test
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test setup system-deps models lint typecheck bench eval clean docs

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

system-deps:
	bash scripts/system-deps.sh

setup: system-deps $(STAMP) models

models: $(STAMP)
	$(BIN)/gemwatch models provision
	$(BIN)/gemwatch watchlist models

demo: setup
	$(BIN)/gemwatch demo

lint: $(STAMP)
	$(BIN)/ruff check src tests eval benchmarks
	$(BIN)/ruff format --check src tests eval benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

test: setup
	bash scripts/services.sh
	$(MAKE) --no-print-directory lint typecheck
	bash scripts/pytest.sh

bench: setup
	$(BIN)/python benchmarks/pipeline.py

eval: setup
	$(BIN)/python eval/people.py

clean:
	rm -rf $(VENV) gemwatch-data .pytest_cache .mypy_cache .ruff_cache

docs: $(STAMP)
	$(BIN)/python scripts/update_readme.py
